/**
 * Per-sequence KV cache of one stage: one growable buffer per layer for keys
 * and one for values, laid out head-major [kvHeads, capacity, headDim] as the
 * attention reads them. A single-row batch feeds the buffers to onnxruntime as
 * they lie, spare capacity masked; only the new tokens' rows are written each
 * step, so no step copies the cache. Capacity doubles (amortised copy) as a
 * sequence grows.
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

  readonly kvDim: number;

  constructor(
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly maxSeqLen: number,
    readonly budgetBytes: number,
    readonly maxSequences: number,
  ) {
    this.kvDim = kvHeads * headDim;
  }

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
    const { kvHeads, headDim } = this;
    const move = (old: Float32Array | undefined) => {
      const next = new Float32Array(capacity * this.kvDim);
      if (!old) return next;
      for (let h = 0; h < kvHeads; h++) {
        const from = h * seq.capacity * headDim;
        next.set(old.subarray(from, from + seq.length * headDim), h * capacity * headDim);
      }
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
