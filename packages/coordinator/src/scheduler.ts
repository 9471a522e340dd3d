/**
 * The scheduler turns live sequences into micro-batches and keeps several in
 * the pipeline at once, so that every stage works while the others do.
 *
 * - A sequence is *feedable* when it has tokens the pipeline has not seen and is
 *   not waiting for a sampled token. One pending token makes a decode row; more
 *   make a prefill chunk. Chunks of one prompt may be in flight together: every
 *   link is FIFO and every stage runs frames in order, so each stage has chunk k
 *   in its cache before chunk k+1 arrives. Only the last chunk samples.
 * - Decode rows are grouped so that the decoding sequences spread over the
 *   `maxInFlight` micro-batches; prefill chunks travel as their own micro-batches
 *   (padding a decode row to a chunk's width would waste the work) and take turns
 *   with decode so neither starves.
 * - Batching never changes a sequence's tokens (the engine guarantees it).
 */
import {
  AbortedError,
  asSwarmBeeError,
  type SamplingParams,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { BatchRow } from '@swarmbee/engine';

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

export interface SchedulerOptions {
  /** Micro-batches in the pipeline at once. Default 2; use at least the stage count. */
  maxInFlight?: number;
  /** Most rows in one decode micro-batch. Default 16. */
  maxBatchRows?: number;
  /** Tokens per prefill chunk. Default 128. */
  prefillChunkTokens?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 2;
export const DEFAULT_MAX_BATCH_ROWS = 16;
export const DEFAULT_PREFILL_CHUNK_TOKENS = 128;

export interface SequenceRequest {
  promptIds: number[];
  /** Most tokens to sample. */
  maxTokens: number;
  sampling: SamplingParams;
  /** Sampled ids that end the sequence without being part of it. */
  stopIds: number[];
  logprobs?: boolean;
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
  /** Wall time from submission to the end. */
  totalMs: number;
}

interface Sequence {
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
  logprobs: number[];
  startedAt: number;
  firstTokenAt?: number;
  settled: boolean;
  resolve: (result: SequenceResult) => void;
  reject: (error: SwarmBeeError) => void;
}

export class Scheduler {
  /** Where batches go; undefined while the pipeline is being rebuilt (sequences wait). */
  #transport: BatchTransport | undefined;
  #maxInFlight: number;
  #replayed = 0;
  readonly #maxBatchRows: number;
  readonly #chunk: number;
  readonly #live = new Map<string, Sequence>();
  readonly #inFlight = new Map<number, Sequence[]>();
  #nextBatch = 1;
  #nextSequence = 1;
  #prefillTurn = true;

  constructor(transport: BatchTransport | undefined, options: SchedulerOptions = {}) {
    this.#transport = transport;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#maxBatchRows = options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS;
    this.#chunk = options.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS;
  }

  /** Sequences being generated now. */
  get active(): number {
    return this.#live.size;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Generates one sequence; resolves when it ends. Validation is the caller's job. */
  generate(request: SequenceRequest): Promise<SequenceResult> {
    return new Promise((resolve, reject) => {
      request.signal?.throwIfAborted();
      const seq: Sequence = {
        id: `seq-${process.pid}-${this.#nextSequence++}`,
        request,
        ids: [...request.promptIds],
        sent: 0,
        sampled: 0,
        awaitingToken: false,
        inFlight: 0,
        replays: 0,
        logprobs: [],
        startedAt: performance.now(),
        settled: false,
        resolve,
        reject,
      };
      if (request.maxTokens === 0) {
        resolve(this.#result(seq, 'length'));
        return;
      }
      this.#live.set(seq.id, seq);
      request.signal?.addEventListener(
        'abort',
        () => this.#fail(seq, new AbortedError('the request was cancelled')),
        { once: true },
      );
      this.#pump();
    });
  }

  /** Fails every live sequence (the pipeline is gone). */
  failAll(error: SwarmBeeError): void {
    for (const seq of [...this.#live.values()]) this.#fail(seq, error);
  }

  /**
   * Forgets the current pipeline: batches in flight are abandoned (their results, if any
   * come, are ignored), and every live sequence will be replayed from position 0 — its
   * prompt and the tokens sampled so far — into whatever pipeline is attached next, so
   * the stages rebuild its KV cache. Greedy sequences then continue exactly as before.
   */
  detach(): void {
    this.#transport = undefined;
    for (const batch of this.#inFlight.values()) for (const seq of batch) seq.inFlight--;
    this.#inFlight.clear();
    for (const seq of this.#live.values()) {
      seq.sent = 0;
      seq.awaitingToken = false;
      seq.inFlight = 0;
      seq.replays++;
    }
  }

  /** Sends live sequences (replays first in line) into a new pipeline. */
  attach(transport: BatchTransport, options: { maxInFlight?: number } = {}): void {
    this.#transport = transport;
    if (options.maxInFlight !== undefined) this.#maxInFlight = options.maxInFlight;
    this.#pump();
  }

  /** Sequences replayed into a rebuilt pipeline since this scheduler started. */
  get replays(): number {
    let total = this.#replayed;
    for (const seq of this.#live.values()) total += seq.replays;
    return total;
  }

  #pump(): void {
    if (!this.#transport) return;
    while (this.#inFlight.size < this.#maxInFlight) {
      const batch = this.#nextMicroBatch();
      if (!batch) return;
      this.#send(batch.rows, batch.sequences);
    }
  }

  #nextMicroBatch(): { rows: BatchRow[]; sequences: Sequence[] } | undefined {
    const feedable = [...this.#live.values()].filter(
      (s) => !s.awaitingToken && s.ids.length > s.sent,
    );
    const decoders = feedable.filter((s) => s.ids.length - s.sent === 1);
    const prefillers = feedable.filter((s) => s.ids.length - s.sent > 1);
    const takePrefill = prefillers.length > 0 && (decoders.length === 0 || this.#prefillTurn);
    if (takePrefill) {
      this.#prefillTurn = false;
      const seq = prefillers[0]!;
      const count = Math.min(this.#chunk, seq.ids.length - seq.sent);
      return { rows: [this.#row(seq, count)], sequences: [seq] };
    }
    if (decoders.length === 0) return undefined;
    this.#prefillTurn = true;
    const decoding = [...this.#live.values()].filter(
      (s) => s.sent >= s.request.promptIds.length - 1 && s.sampled > 0,
    ).length;
    const share = Math.ceil(Math.max(decoding, decoders.length) / this.#maxInFlight);
    const take = decoders.slice(0, Math.max(1, Math.min(this.#maxBatchRows, share)));
    return { rows: take.map((s) => this.#row(s, 1)), sequences: take };
  }

  #row(seq: Sequence, count: number): BatchRow {
    const row: BatchRow = { seqId: seq.id, start: seq.sent, count };
    if (seq.sent + count === seq.ids.length) {
      row.sampling = seq.request.sampling;
      if (seq.request.logprobs) row.logprobs = true;
      seq.awaitingToken = true;
    }
    return row;
  }

  #send(rows: BatchRow[], sequences: Sequence[]): void {
    const batchId = this.#nextBatch++;
    const width = Math.max(...rows.map((r) => r.count));
    const tokens = new BigInt64Array(rows.length * width);
    rows.forEach((row, r) => {
      const seq = sequences[r]!;
      for (let i = 0; i < row.count; i++) tokens[r * width + i] = BigInt(seq.ids[row.start + i]!);
      seq.sent += row.count;
      seq.inFlight++;
    });
    this.#inFlight.set(batchId, sequences);
    // A batch of an abandoned pipeline is no longer in #inFlight: its outcome is ignored.
    this.#transport!.run({ batchId, rows, tokens }).then(
      (result) => {
        if (this.#inFlight.has(batchId)) this.#complete(batchId, rows, result);
      },
      (error) => {
        if (this.#inFlight.has(batchId)) this.#failBatch(batchId, asSwarmBeeError(error));
      },
    );
  }

  #complete(batchId: number, rows: BatchRow[], result: MicroBatchResult): void {
    const sequences = this.#landed(batchId);
    const now = performance.now();
    rows.forEach((row, r) => {
      const seq = sequences[r]!;
      if (!row.sampling || seq.settled) return;
      seq.awaitingToken = false;
      const token = result.tokens[r]!;
      seq.firstTokenAt ??= now;
      seq.sampled++;
      if (seq.request.stopIds.includes(token)) {
        this.#finish(seq, 'stop');
        return;
      }
      seq.ids.push(token);
      const logprob = result.logprobs?.[r];
      if (seq.request.logprobs) seq.logprobs.push(logprob ?? 0);
      const keepGoing = seq.request.onToken?.(token, logprob);
      if (keepGoing === false) this.#finish(seq, 'stop');
      else if (seq.sampled >= seq.request.maxTokens) this.#finish(seq, 'length');
    });
    this.#pump();
  }

  #failBatch(batchId: number, error: SwarmBeeError): void {
    for (const seq of this.#landed(batchId)) this.#fail(seq, error);
    this.#pump();
  }

  /** The batch's sequences; releases those retired while the batch was out. */
  #landed(batchId: number): Sequence[] {
    const sequences = this.#inFlight.get(batchId) ?? [];
    this.#inFlight.delete(batchId);
    for (const seq of sequences) {
      seq.inFlight--;
      if (seq.settled && seq.inFlight === 0) this.#transport?.release([seq.id]);
    }
    return sequences;
  }

  #finish(seq: Sequence, finish: SequenceResult['finish']): void {
    if (seq.settled) return;
    this.#retire(seq);
    seq.resolve(this.#result(seq, finish));
  }

  #fail(seq: Sequence, error: SwarmBeeError): void {
    if (seq.settled) return;
    this.#retire(seq);
    seq.reject(error);
  }

  #retire(seq: Sequence): void {
    seq.settled = true;
    this.#live.delete(seq.id);
    // A batch still out would reach a stage after the release: free the cache when it lands.
    this.#replayed += seq.replays;
    if (seq.inFlight === 0) this.#transport?.release([seq.id]);
  }

  #result(seq: Sequence, finish: SequenceResult['finish']): SequenceResult {
    const now = performance.now();
    return {
      ids: seq.ids,
      promptTokens: seq.request.promptIds.length,
      logprobs: seq.logprobs,
      finish,
      firstTokenMs: (seq.firstTokenAt ?? now) - seq.startedAt,
      totalMs: now - seq.startedAt,
    };
  }
}
