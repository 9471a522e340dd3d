/**
 * The scheduler's transport to a cluster: forward frames go to stage 0's data
 * URL; sampled tokens come back from the last stage on a data connection it
 * opened to the coordinator; a stage that fails a batch reports it over its
 * control connection. The coordinator never relays hidden states.
 *
 * A batch that failed because the pipeline itself broke (a link closed or went silent,
 * a stage gone) is not the request's fault: it is reported through `onFault`, stays
 * pending, and the coordinator rebuilds the pipeline and replays its sequences. Only a
 * failure of the batch itself (bad input, a full KV cache) reaches the scheduler.
 */
import {
  AbortedError,
  asSwarmBeeError,
  ChannelClosedError,
  ConnectFailedError,
  EngineClosedError,
  fromWire,
  GroupMemberLostError,
  PeerTimeoutError,
  SendQueueFullError,
  type SwarmBeeError,
  TimeoutError,
} from '@swarmbee/core';
import type { BatchTransport, MicroBatch, MicroBatchResult } from '@swarmbee/engine';
import type { Channel, ErrorMessage, TokensMessage } from '@swarmbee/protocol';
import { int64Tensor } from '@swarmbee/protocol';

interface PendingBatch {
  batch: MicroBatch;
  resolve: (result: MicroBatchResult) => void;
  reject: (error: SwarmBeeError) => void;
}

/** Codes that mean a link or stage of the pipeline broke, not that the batch was bad. */
const PIPELINE_FAULTS: ReadonlySet<string> = new Set([
  ChannelClosedError.code,
  PeerTimeoutError.code,
  ConnectFailedError.code,
  EngineClosedError.code,
  // A tensor-parallel stage lost a member: the group is formed again as a lost stage is.
  GroupMemberLostError.code,
  SendQueueFullError.code,
  TimeoutError.code,
  AbortedError.code,
]);

export function isPipelineFault(error: Pick<SwarmBeeError, 'code'>): boolean {
  return PIPELINE_FAULTS.has(error.code);
}

export class RemoteTransport implements BatchTransport {
  readonly #pending = new Map<number, PendingBatch>();
  /** Hears of every micro-batch sent (the drift monitor tallies the work a window held). */
  onSent?: (batch: MicroBatch) => void;

  /** `onFault` hears of a broken pipeline (a batch failed for a fault of links or stages). */
  constructor(
    readonly stage0: Channel<'data'>,
    readonly onFault: (error: SwarmBeeError) => void = () => {},
  ) {}

  get pending(): number {
    return this.#pending.size;
  }

  run(batch: MicroBatch): Promise<MicroBatchResult> {
    return new Promise((resolve, reject) => {
      this.#pending.set(batch.batchId, { batch, resolve, reject });
      const width = batch.tokens.length / batch.rows.length;
      try {
        this.stage0.send({
          type: 'forward',
          batchId: batch.batchId,
          rows: batch.rows,
          tokens: int64Tensor(batch.tokens, [batch.rows.length, width]),
          sentAt: Date.now(),
        });
        this.onSent?.(batch);
      } catch (error) {
        // The link to stage 0 is closing: the coordinator will rebuild and replay.
        const coded = asSwarmBeeError(error);
        if (isPipelineFault(coded)) this.onFault(coded);
        else {
          this.#pending.delete(batch.batchId);
          reject(coded);
        }
      }
    });
  }

  onTokens(message: TokensMessage): void {
    const pending = this.#pending.get(message.batchId);
    if (!pending) return;
    this.#pending.delete(message.batchId);
    const { rows } = pending.batch;
    const index = new Map(rows.map((row, r) => [row.seqId, r]));
    const tokens = new Int32Array(rows.length).fill(-1);
    const wantLogprobs = rows.some((row) => row.logprobs);
    const logprobs = wantLogprobs ? new Float32Array(rows.length) : undefined;
    for (const sampled of message.rows) {
      const r = index.get(sampled.seqId);
      if (r === undefined) continue;
      tokens[r] = sampled.tokenId;
      if (logprobs && sampled.logprob !== undefined) logprobs[r] = sampled.logprob;
    }
    pending.resolve(logprobs ? { tokens, logprobs } : { tokens });
  }

  /** Fails the batch a stage reported; returns false for a batch this transport never sent. */
  onBatchError(message: ErrorMessage): boolean {
    if (message.batchId === undefined) return false;
    const pending = this.#pending.get(message.batchId);
    if (!pending) return false;
    const error = fromWire(message);
    if (isPipelineFault(error)) {
      this.onFault(error);
      return true;
    }
    this.#pending.delete(message.batchId);
    pending.reject(error);
    return true;
  }

  release(seqIds: string[]): void {
    if (seqIds.length === 0 || this.stage0.state !== 'open') return;
    try {
      this.stage0.send({ type: 'release', seqIds });
    } catch {
      // The pipeline is going away; its caches go with it.
    }
  }

  /** Rejects every batch in flight (the pipeline broke). */
  failAll(error: SwarmBeeError): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
