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
 * - Admission: a sequence starts only when it fits every stage's KV cache (see
 *   {@link KvAdmission}); until then it waits here, first come first served. A batch a
 *   stage still refuses for its KV budget parks its sequences: their caches are freed and
 *   they wait at the front until another sequence has freed room, then replay.
 */
import {
  AbortedError,
  asSwarmBeeError,
  ClusterUnavailableError,
  type CoordinatorTiming,
  DEFAULT_MAX_BATCH_ROWS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_REPLAYS,
  DEFAULT_PREFILL_CHUNK_TOKENS,
  KvBudgetExceededError,
  type SwarmBeeError,
} from '@swarmbee/core';
import { publishBatch } from '../events.js';
import type { BatchRow } from '../stage-engine.js';
import { type AdmissionLimits, KvAdmission } from './admission.js';
import {
  type BatchTransport,
  MicroBatcher,
  type MicroBatchResult,
  type Sequence,
  type SequenceRequest,
  type SequenceResult,
} from './micro-batch.js';
import { StepCostMeter } from './step-cost.js';

/** Defaults: @swarmbee/core's generation defaults, the same in process and in a cluster. */
export interface SchedulerOptions {
  /** Micro-batches in the pipeline at once. Default {@link DEFAULT_MAX_IN_FLIGHT} (2); use at least the stage count. */
  maxInFlight?: number;
  /** Most rows in one decode micro-batch. Default {@link DEFAULT_MAX_BATCH_ROWS} (16). */
  maxBatchRows?: number;
  /** Tokens per prefill chunk. Default {@link DEFAULT_PREFILL_CHUNK_TOKENS} (128). */
  prefillChunkTokens?: number;
  /** The model's context, positions: the largest KV arena a sequence can need. Default 2048. */
  maxSeqLen?: number;
  /** Times a sequence may be replayed into a rebuilt pipeline before it fails. Default {@link DEFAULT_MAX_REPLAYS} (8). */
  maxReplays?: number;
}

const DEFAULT_MAX_SEQ_LEN = 2048;

/** What attaching a pipeline tells the scheduler: how much to keep in flight and what fits. */
export interface AttachOptions {
  maxInFlight?: number;
  /** Each stage's admission limits; absent or empty admits every sequence at once. */
  limits?: readonly AdmissionLimits[];
}

let nextScheduler = 1;
/** Sequence ids are unique in the process: schedulers may share a pipeline, whose releases are fire and forget. */
let nextSequence = 1;

export class Scheduler {
  /** Where batches go; undefined while the pipeline is being rebuilt (sequences wait). */
  #transport: BatchTransport | undefined;
  #maxInFlight: number;
  #replayed = 0;
  readonly #batcher: MicroBatcher;
  readonly #maxReplays: number;
  /** Sequences admitted to the pipeline and not finished. */
  readonly #live = new Map<string, Sequence>();
  /** Finished sequences whose cache is not released yet (a batch of theirs is out). */
  readonly #unreleased = new Set<Sequence>();
  /** Sequences waiting for room, in arrival order (parked ones in front). */
  #waiting: Sequence[] = [];
  readonly #admission: KvAdmission;
  /** Cache releases sent so far: a parked sequence retries after the next one. */
  #releases = 0;
  readonly #inFlight = new Map<number, Sequence[]>();
  readonly #stepCost = new StepCostMeter();
  #nextBatch = 1;
  /** Names this scheduler's batches on the diagnostics channel. */
  readonly #schedulerId = nextScheduler++;

  constructor(transport: BatchTransport | undefined, options: SchedulerOptions = {}) {
    this.#transport = transport;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#batcher = new MicroBatcher(
      options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS,
      options.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS,
    );
    this.#maxReplays = options.maxReplays ?? DEFAULT_MAX_REPLAYS;
    this.#admission = new KvAdmission(options.maxSeqLen ?? DEFAULT_MAX_SEQ_LEN);
  }

  /** Sequences being generated now (admitted to the pipeline). */
  get active(): number {
    return this.#live.size;
  }

  /** Sequences waiting for room in the stages' KV caches. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Why a sequence of `positions` (prompt + max tokens - 1) can never run on the attached
   * pipeline, or undefined: check it before answering, so a refusal is a status, not a stream error.
   */
  refusal(positions: number): string | undefined {
    return this.#admission.refusal(positions);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Its own time per micro-batch that comes back, by rows; undefined before enough steps. */
  get stepCost(): CoordinatorTiming | undefined {
    return this.#stepCost.timing();
  }

  /** Generates one sequence; resolves when it ends. Validation is the caller's job. */
  generate(request: SequenceRequest): Promise<SequenceResult> {
    return new Promise((resolve, reject) => {
      request.signal?.throwIfAborted();
      const seq: Sequence = {
        id: `seq-${process.pid}-${nextSequence++}`,
        request,
        ids: [...request.promptIds],
        sent: 0,
        sampled: 0,
        awaitingToken: false,
        inFlight: 0,
        replays: 0,
        positions: request.promptIds.length + Math.max(0, request.maxTokens - 1),
        admitted: false,
        dispose: () => {},
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
      const { signal } = request;
      if (signal) {
        const onAbort = () => this.#fail(seq, new AbortedError('the request was cancelled'));
        signal.addEventListener('abort', onAbort, { once: true });
        seq.dispose = () => signal.removeEventListener('abort', onAbort);
      }
      this.#waiting.push(seq);
      this.#admit();
      this.#pump();
    });
  }

  /** Lets waiting sequences in, in order, while they fit beside the live ones. */
  #admit(): void {
    while (this.#waiting.length > 0) {
      const seq = this.#waiting[0]!;
      // A parked sequence retries only once another sequence has given room back.
      if (seq.parkedAt !== undefined && seq.parkedAt >= this.#releases) return;
      const live = [...this.#live.values(), ...this.#unreleased].map((s) => s.positions);
      if (live.length > 0 && !this.#admission.fits(live, seq.positions)) return;
      this.#waiting.shift();
      seq.parkedAt = undefined;
      seq.admitted = true;
      this.#live.set(seq.id, seq);
    }
  }

  /** Fails every live and waiting sequence (the pipeline is gone). */
  failAll(error: SwarmBeeError): void {
    for (const seq of [...this.#live.values(), ...this.#waiting]) this.#fail(seq, error);
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
    // The old pipeline's caches went with it.
    this.#unreleased.clear();
    for (const seq of [...this.#live.values()]) {
      seq.sent = 0;
      seq.awaitingToken = false;
      seq.inFlight = 0;
      seq.parkOnLand = false;
      if (++seq.replays > this.#maxReplays)
        this.#fail(
          seq,
          new ClusterUnavailableError(
            `the pipeline broke ${seq.replays} times while this request ran; retry it`,
          ),
        );
    }
  }

  /** Sends live sequences (replays first in line) into a new pipeline. */
  attach(transport: BatchTransport, options: AttachOptions = {}): void {
    this.#transport = transport;
    if (options.maxInFlight !== undefined) this.#maxInFlight = options.maxInFlight;
    this.#admission.set(options.limits ?? []);
    this.#admit();
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
      const batch = this.#batcher.next(this.#live.values(), this.#maxInFlight);
      if (!batch) return;
      this.#send(batch.rows, batch.sequences);
    }
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
    publishBatch(this.#schedulerId, batchId, rows);
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
    this.#takeTokens(rows, result, sequences, now);
    this.#pump();
    this.#stepCost.record(rows.length, performance.now() - now);
  }

  /** Each sampling row's token goes to its sequence, which may finish on it. */
  #takeTokens(
    rows: BatchRow[],
    result: MicroBatchResult,
    sequences: Sequence[],
    now: number,
  ): void {
    rows.forEach((row, r) => {
      const seq = sequences[r]!;
      if (!row.sampling || seq.settled || !seq.admitted) return;
      seq.awaitingToken = false;
      const token = result.tokens[r]!;
      seq.firstTokenAt ??= now;
      seq.lastTokenAt = now;
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
  }

  #failBatch(batchId: number, error: SwarmBeeError): void {
    const sequences = this.#landed(batchId);
    if (error.code === KvBudgetExceededError.code) {
      for (const seq of sequences) this.#park(seq, error);
    } else {
      for (const seq of sequences) this.#fail(seq, error);
    }
    this.#admit();
    this.#pump();
  }

  /**
   * A stage had no room for this sequence after all: free its cache everywhere and put it
   * first in line, to replay once another sequence has given room back. With nothing
   * else running no room will come, so it fails.
   */
  #park(seq: Sequence, error: SwarmBeeError): void {
    if (seq.settled || !seq.admitted) return;
    const others = [...this.#live.values()].some((s) => s !== seq) || this.#unreleased.size > 0;
    if (!others) {
      this.#fail(seq, error);
      return;
    }
    if (seq.inFlight > 0) {
      // Its other batches are still out: park it when they have landed.
      seq.parkOnLand = true;
      return;
    }
    seq.parkOnLand = false;
    seq.admitted = false;
    seq.sent = 0;
    seq.awaitingToken = false;
    this.#live.delete(seq.id);
    this.#transport?.release([seq.id]);
    seq.parkedAt = this.#releases;
    this.#waiting.unshift(seq);
  }

  /** The batch's sequences; releases those retired while the batch was out. */
  #landed(batchId: number): Sequence[] {
    const sequences = this.#inFlight.get(batchId) ?? [];
    this.#inFlight.delete(batchId);
    for (const seq of sequences) {
      seq.inFlight--;
      if (seq.inFlight > 0) continue;
      if (seq.settled && this.#unreleased.delete(seq)) this.#release(seq);
      else if (seq.parkOnLand) this.#park(seq, new KvBudgetExceededError('parked'));
    }
    return sequences;
  }

  #release(seq: Sequence): void {
    this.#transport?.release([seq.id]);
    this.#releases++;
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
    seq.dispose();
    this.#replayed += seq.replays;
    if (!seq.admitted) {
      this.#waiting = this.#waiting.filter((s) => s !== seq);
      return;
    }
    this.#live.delete(seq.id);
    // A batch still out would reach a stage after the release: free the cache when it lands.
    if (seq.inFlight === 0) this.#release(seq);
    else this.#unreleased.add(seq);
    this.#admit();
  }

  #result(seq: Sequence, finish: SequenceResult['finish']): SequenceResult {
    const now = performance.now();
    return {
      ids: seq.ids,
      promptTokens: seq.request.promptIds.length,
      logprobs: seq.logprobs,
      finish,
      firstTokenMs: (seq.firstTokenAt ?? now) - seq.startedAt,
      decodeMs: (seq.lastTokenAt ?? 0) - (seq.firstTokenAt ?? 0),
      totalMs: now - seq.startedAt,
    };
  }
}
