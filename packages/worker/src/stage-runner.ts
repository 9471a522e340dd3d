/**
 * The data plane of one stage: forward frames in from upstream, through the
 * engine, out to the next stage (or, from the last stage, sampled tokens to
 * the coordinator). Frames are submitted to the engine the moment they arrive
 * (its thread runs them in order), and results leave in the same order, so the
 * engine never waits for the network and every link stays FIFO.
 *
 * The leader of a tensor-parallel stage also hands every frame it receives (forwards and
 * releases) to the group's other members before its own engine takes it (`members`); a
 * member other than the leader has no downstream: its outputs are dropped (the leader's
 * is the stage's), its failures reported like any stage's.
 */
import { asSwarmBeeError, type SwarmBeeError } from '@swarmbee/core';
import type { BatchRow, StageBatch, StageEngine, StageOutput } from '@swarmbee/engine';
import {
  type Channel,
  type DataMessage,
  type ForwardMessage,
  float32Tensor,
  float32Values,
  int64Values,
  type SampledToken,
  tensorOwnsFrame,
} from '@swarmbee/protocol';
import { epochMs, StageTimeline } from './stage-timeline.js';

export interface StageRunnerStats {
  forwards: number;
  forwardMsTotal: number;
  /** Engine time of every forward so far, the KV cache's included, ms: what a profile times. */
  busyMsTotal: number;
  /** Micro-batches received and not yet sent on. */
  queueDepth: number;
  bytesSent: number;
  /** Share of wall time since loading that the engine was not computing, 0..1. */
  idleShare: number;
  failedBatches: number;
}

export interface StageRunnerOptions {
  stage: number;
  engine: StageEngine;
  /**
   * Where results go: the next stage, or the coordinator from the last stage. Absent on a
   * tensor-parallel member other than the leader: its results are dropped.
   */
  downstream?: Channel<'data'>;
  /** A tensor-parallel leader's links to the group's other members, which get every frame too. */
  members?: readonly Channel<'data'>[];
  /** Reports a batch this stage could not run (over the control plane, to the coordinator). */
  reportFailure: (batchId: number, error: SwarmBeeError) => void;
}

export class StageRunner {
  readonly #options: StageRunnerOptions;
  /** Recent micro-batches on the wall clock, for `swarmbee bench`'s timeline. */
  readonly timeline = new StageTimeline();
  readonly #loadedAt = performance.now();
  /** Sends happen in arrival order: each waits for the one before it. */
  #tail: Promise<void> = Promise.resolve();
  #queued = 0;
  #forwards = 0;
  #busyMs = 0;
  #forwardMsTotal = 0;
  #failed = 0;

  constructor(options: StageRunnerOptions) {
    this.#options = options;
  }

  get stage(): number {
    return this.#options.stage;
  }

  accept(message: DataMessage): void {
    if (message.type === 'forward' || message.type === 'release') this.#fanOut(message);
    switch (message.type) {
      case 'forward':
        this.#forward(message);
        return;
      case 'release': {
        const released = this.#options.engine.release(message.seqIds);
        this.#then(async () => {
          await released.catch(() => {});
          // A downstream that is gone took the next stages' caches with it.
          await this.#options.downstream?.write(message).catch(() => {});
        });
        return;
      }
      default:
        return;
    }
  }

  #forward(message: ForwardMessage): void {
    const arrivedAt = epochMs();
    this.#queued++;
    const rows: BatchRow[] = message.rows.map((row) => {
      const out: BatchRow = { seqId: row.seqId, start: row.start, count: row.count };
      if (row.sampling) out.sampling = row.sampling;
      if (row.logprobs) out.logprobs = true;
      if (row.adapter) out.adapter = row.adapter;
      return out;
    });
    const batch: StageBatch = { rows };
    const tensor = message.tokens ?? message.hidden;
    if (message.tokens) batch.tokens = int64Values(message.tokens);
    if (message.hidden) batch.hidden = float32Values(message.hidden);
    if (this.#options.members?.length) {
      // The members' sockets may still hold the frame's bytes: the engine gets a copy.
      if (batch.tokens) batch.tokens = batch.tokens.slice();
      if (batch.hidden) batch.hidden = batch.hidden.slice();
      batch.buffersMovable = true;
    } else if (tensor && tensorOwnsFrame(tensor)) {
      // The frame is read once, here: its buffer moves to the engine's thread uncopied.
      batch.buffersMovable = true;
    }
    const output = this.#options.engine.forward(batch);
    // Stamped when the engine answers, not when this frame's turn to send comes.
    const computedAt = output.then(epochMs, epochMs);
    this.#then(async () => {
      try {
        const result = await output;
        this.#account(result);
        await this.#options.downstream?.write(this.#outgoing(message, rows, result));
        const computeEnd = await computedAt;
        const computeMs = result.timing.forwardMs + result.timing.kvMs;
        this.timeline.record({
          batchId: message.batchId,
          rows: rows.length,
          arrivedAt,
          computeStart: computeEnd - computeMs,
          computeEnd,
          sentAt: epochMs(),
        });
      } catch (error) {
        this.#failed++;
        this.#options.reportFailure(message.batchId, asSwarmBeeError(error, this.#options.stage));
      } finally {
        this.#queued--;
      }
    });
  }

  /**
   * Sends a frame on to the group's other members, before this engine may take its buffers.
   * A member that cannot be reached fails the sums, and with them the batch: nothing to do here.
   */
  #fanOut(message: DataMessage): void {
    for (const member of this.#options.members ?? []) {
      try {
        member.send(message);
      } catch {
        // Closed or full: the group's links report the member lost.
      }
    }
  }

  #outgoing(message: ForwardMessage, rows: BatchRow[], result: StageOutput): DataMessage {
    if (result.kind === 'hidden') {
      const forward: ForwardMessage = {
        type: 'forward',
        batchId: message.batchId,
        rows: message.rows,
        hidden: float32Tensor(result.hidden, [
          rows.length,
          result.width,
          result.hidden.length / (rows.length * result.width),
        ]),
      };
      if (message.sentAt !== undefined) forward.sentAt = message.sentAt;
      return forward;
    }
    const sampled: SampledToken[] = [];
    rows.forEach((row, r) => {
      if (!row.sampling) return;
      const token: SampledToken = { seqId: row.seqId, tokenId: result.tokens[r]! };
      if (row.logprobs && result.logprobs) token.logprob = result.logprobs[r]!;
      sampled.push(token);
    });
    return message.sentAt === undefined
      ? { type: 'tokens', batchId: message.batchId, rows: sampled }
      : { type: 'tokens', batchId: message.batchId, rows: sampled, sentAt: message.sentAt };
  }

  #account(result: StageOutput): void {
    this.#forwards++;
    this.#forwardMsTotal += result.timing.forwardMs;
    this.#busyMs += result.timing.forwardMs + result.timing.kvMs;
  }

  /** Runs `step` after the steps before it; the chain never rejects (steps report their own failures). */
  #then(step: () => Promise<void>): void {
    this.#tail = this.#tail.then(step).catch(() => {});
  }

  /** Resolves once everything received so far has been sent on. */
  async idle(): Promise<void> {
    let tail: Promise<void>;
    do {
      tail = this.#tail;
      await tail;
    } while (tail !== this.#tail);
  }

  stats(): StageRunnerStats {
    const wallMs = performance.now() - this.#loadedAt;
    return {
      forwards: this.#forwards,
      forwardMsTotal: this.#forwardMsTotal,
      busyMsTotal: this.#busyMs,
      queueDepth: this.#queued,
      bytesSent: this.#options.downstream?.counters.bytesSent ?? 0,
      idleShare: wallMs > 0 ? Math.max(0, 1 - this.#busyMs / wallMs) : 1,
      failedBatches: this.#failed,
    };
  }

  async close(): Promise<void> {
    await this.idle().catch(() => {});
    this.#options.downstream?.close(1001, 'stage unloaded');
    for (const member of this.#options.members ?? []) member.close(1001, 'stage unloaded');
    await this.#options.engine.close();
  }
}
