/**
 * Per-sequence KV cache of one stage, one growable buffer per layer for keys
 * and for values, laid out [position, kvDim]. Because the layout is
 * position-major, a sequence's past is a contiguous prefix: a single-row batch
 * feeds it to onnxruntime as a view and receives the new keys straight into
 * the slots after it, with no copy of the cache on any step.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  KvBudgetExceededError,
  SequenceUnknownError,
} from '@swarmbee/core';

/** First allocation per layer, in positions; buffers double from there. */
const INITIAL_CAPACITY_POSITIONS = 32;

export interface SequenceCache {
  /** Positions stored. */
  length: number;
  /** Positions the buffers hold room for. */
  capacity: number;
  keys: Float32Array[];
  values: Float32Array[];
}

export class KvCache {
  readonly #sequences = new Map<string, SequenceCache>();
  #bytes = 0;

  constructor(
    readonly layers: number,
    readonly kvDim: number,
    readonly maxSeqLen: number,
    readonly budgetBytes: number,
    readonly maxSequences: number,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#sequences.size;
  }

  get(seqId: string): SequenceCache | undefined {
    return this.#sequences.get(seqId);
  }

  /**
   * Makes room for `count` tokens at `start`, discarding anything stored at or
   * after `start` (a replay rewrites history from there).
   */
  reserve(seqId: string, start: number, count: number): SequenceCache {
    if (start + count > this.maxSeqLen) {
      throw new ContextOverflowError(
        `sequence ${seqId} would reach position ${start + count}, beyond the model's context of ${this.maxSeqLen}`,
      );
    }
    let seq = this.#sequences.get(seqId);
    if (!seq) {
      if (start !== 0) {
        throw new SequenceUnknownError(
          `sequence ${seqId} is not cached here, so it must start at position 0, not ${start}`,
        );
      }
      if (this.#sequences.size >= this.maxSequences) {
        throw new KvBudgetExceededError(
          `this stage already holds the most sequences it may (${this.maxSequences})`,
        );
      }
      seq = { length: 0, capacity: 0, keys: [], values: [] };
      this.#sequences.set(seqId, seq);
    }
    if (start > seq.length) {
      throw new InvalidArgumentError(
        `sequence ${seqId} has ${seq.length} cached positions; a row cannot start at ${start}`,
      );
    }
    seq.length = start;
    if (start + count > seq.capacity) this.#grow(seqId, seq, start + count);
    return seq;
  }

  #grow(seqId: string, seq: SequenceCache, needed: number): void {
    let capacity = Math.max(seq.capacity, INITIAL_CAPACITY_POSITIONS);
    while (capacity < needed) capacity *= 2;
    capacity = Math.min(capacity, this.maxSeqLen);
    const extra = (capacity - seq.capacity) * this.kvDim * 4 * 2 * this.layers;
    if (this.#bytes + extra > this.budgetBytes) {
      if (seq.length === 0 && seq.capacity === 0) this.#sequences.delete(seqId);
      throw new KvBudgetExceededError(
        `KV cache needs ${extra} more bytes for sequence ${seqId}; ${this.#bytes} of ${this.budgetBytes} are in use`,
      );
    }
    const move = (old: Float32Array | undefined) => {
      const next = new Float32Array(capacity * this.kvDim);
      if (old) next.set(old.subarray(0, seq.length * this.kvDim));
      return next;
    };
    seq.keys = Array.from({ length: this.layers }, (_, l) => move(seq.keys[l]));
    seq.values = Array.from({ length: this.layers }, (_, l) => move(seq.values[l]));
    seq.capacity = capacity;
    this.#bytes += extra;
  }

  release(seqId: string): void {
    const seq = this.#sequences.get(seqId);
    if (!seq) return;
    this.#bytes -= seq.capacity * this.kvDim * 4 * 2 * this.layers;
    this.#sequences.delete(seqId);
  }
}
