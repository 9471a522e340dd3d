/**
 * What the scheduler works with: the transport batches go through, the micro-batches and
 * their results, a sequence's request and result, and how the next micro-batch is
 * composed from the sequences that can be fed.
 */
import type { SamplingParams, SwarmBeeError } from '@swarmbee/core';
import type { BatchRow } from '../stage-engine.js';

export interface MicroBatch {
  batchId: number;
  rows: BatchRow[];
  /** Token ids [rows, width], width = the longest row. */
  tokens: BigInt64Array;
}

export interface MicroBatchResult {
  /** Per row: the sampled token, or -1 for rows that did not sample. */
  tokens: Int32Array;
  logprobs?: Float32Array;
}

/** Where micro-batches go: a local pipeline or the stages of a cluster. */
export interface BatchTransport {
  run(batch: MicroBatch): Promise<MicroBatchResult>;
  /** Frees the sequences' KV caches on every stage. Fire and forget. */
  release(seqIds: string[]): void;
}

export interface SequenceRequest {
  promptIds: number[];
  /** Most tokens to sample. */
  maxTokens: number;
  sampling: SamplingParams;
  /** Sampled ids that end the sequence without being part of it. */
  stopIds: number[];
  logprobs?: boolean;
  /** The served LoRA adapter to run with (the stages' n-th, n ≥ 1); absent: the base model. */
  adapter?: number;
  /** Called for each sampled token; return false to stop the sequence here (a stop string matched). */
  onToken?: (id: number, logprob: number | undefined) => boolean | undefined;
  signal?: AbortSignal;
}

export interface SequenceResult {
  ids: number[];
  promptTokens: number;
  logprobs: number[];
  finish: 'length' | 'stop';
  /** From submission to the first sampled token. */
  firstTokenMs: number;
  /** From the first sampled token to the last (0 with fewer than two). */
  decodeMs: number;
  /** Wall time from submission to the end. */
  totalMs: number;
}

/** A sequence as the scheduler tracks it. */
export interface Sequence {
  id: string;
  request: SequenceRequest;
  ids: number[];
  /** Positions handed to the pipeline (in flight or done). */
  sent: number;
  sampled: number;
  awaitingToken: boolean;
  /** Micro-batches holding this sequence that have not come back. */
  inFlight: number;
  /** Times the sequence was replayed into a rebuilt pipeline. */
  replays: number;
  /** Positions the sequence can reach: its prompt and all but its last sampled token. */
  positions: number;
  /** Whether admission let it into the pipeline (its cache may be on the stages). */
  admitted: boolean;
  /** Set when a stage refused it for its KV budget: the release count it must wait past. */
  parkedAt?: number;
  /** A stage refused it while other batches of it were out: park it when they land. */
  parkOnLand?: boolean;
  /** Removes the request's abort listener. */
  dispose: () => void;
  logprobs: number[];
  startedAt: number;
  firstTokenAt?: number;
  lastTokenAt?: number;
  settled: boolean;
  resolve: (result: SequenceResult) => void;
  reject: (error: SwarmBeeError) => void;
}

/**
 * Composes micro-batches: one pending token makes a decode row, more make a prefill
 * chunk (travelling alone); decode rows spread over the micro-batches in flight, and
 * prefill and decode take turns so neither starves.
 */
export class MicroBatcher {
  #prefillTurn = true;

  constructor(
    readonly maxBatchRows: number,
    readonly chunkTokens: number,
  ) {}

  /** The next micro-batch from the live sequences, or undefined when none can be fed. */
  next(
    liveSequences: Iterable<Sequence>,
    maxInFlight: number,
  ): { rows: BatchRow[]; sequences: Sequence[] } | undefined {
    const live = [...liveSequences];
    const feedable = live.filter((s) => !s.awaitingToken && s.ids.length > s.sent);
    const decoders = feedable.filter((s) => s.ids.length - s.sent === 1);
    const prefillers = feedable.filter((s) => s.ids.length - s.sent > 1);
    const takePrefill = prefillers.length > 0 && (decoders.length === 0 || this.#prefillTurn);
    if (takePrefill) {
      this.#prefillTurn = false;
      const seq = prefillers[0]!;
      const count = Math.min(this.chunkTokens, seq.ids.length - seq.sent);
      return { rows: [this.#row(seq, count)], sequences: [seq] };
    }
    if (decoders.length === 0) return undefined;
    this.#prefillTurn = true;
    const decoding = live.filter(
      (s) => s.sent >= s.request.promptIds.length - 1 && s.sampled > 0,
    ).length;
    const share = Math.ceil(Math.max(decoding, decoders.length) / maxInFlight);
    const take = decoders.slice(0, Math.max(1, Math.min(this.maxBatchRows, share)));
    return { rows: take.map((s) => this.#row(s, 1)), sequences: take };
  }

  #row(seq: Sequence, count: number): BatchRow {
    const row: BatchRow = { seqId: seq.id, start: seq.sent, count };
    if (seq.request.adapter) row.adapter = seq.request.adapter;
    if (seq.sent + count === seq.ids.length) {
      row.sampling = seq.request.sampling;
      if (seq.request.logprobs) row.logprobs = true;
      seq.awaitingToken = true;
    }
    return row;
  }
}
