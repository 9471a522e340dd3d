/**
 * The worker's side of a shard transfer. An offer is first judged against the worker's
 * memory (MEMORY_SHORT, before anything is received), then answered from the cache when
 * it holds the shard (no transfer), or with what an interrupted transfer of it already
 * verified (the coordinator sends the rest). Chunks go to the cache in order, each
 * checked against its sha256; when more than `maxPendingBytes` wait for the disk, the
 * control connection stops reading (`flow.pause`) until half of that is written, so a
 * disk slower than the link never makes the worker buffer without bound. `shard.done`
 * verifies and stores the shard. Replies go to `reply`; failures reject, for the caller
 * to report — once: a transfer whose chunk failed ignores its `shard.done`.
 */

import type {
  ControlMessage,
  ShardChunkMessage,
  ShardDoneMessage,
  ShardOfferMessage,
} from '@swarmbee/protocol';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';
import { checkMemoryFit, kvBudgetOf, type MemoryAtHand } from './memory-fit.js';
import type { ShardCache } from './shard-cache.js';

/** Default bytes of received chunks that may wait for the disk before reading pauses (16 MiB). */
export const DEFAULT_MAX_PENDING_SHARD_BYTES = 16 * 1024 * 1024;

export interface ShardIntakeCounters {
  shardsReceived: number;
  shardBytesReceived: number;
  shardCacheHits: number;
  /** Bytes an interrupted transfer had verified, that resumed transfers did not need sent. */
  shardBytesResumed: number;
  /** Chunks refused because their bytes did not match their sha256. */
  shardChunksRefused: number;
  /** Most bytes of received chunks that waited for the disk at once. */
  shardPendingBytesPeak: number;
}

export interface ShardIntakeOptions {
  cache: ShardCache;
  reply: (message: ControlMessage) => void;
  /** The worker's name, in the events and errors this publishes. */
  worker: string;
  /** Stops and restarts reading the control connection. */
  flow: { pause(): void; resume(): void };
  /** Received bytes that may wait for the disk before reading pauses. Default 16 MiB. */
  maxPendingBytes?: number;
  /** The memory at hand when an offer comes, and the KV budget the worker imposes. */
  memory: () => MemoryAtHand & { kvBudgetBytes?: number | undefined };
}

export class ShardIntake {
  readonly counters: ShardIntakeCounters = {
    shardsReceived: 0,
    shardBytesReceived: 0,
    shardCacheHits: 0,
    shardBytesResumed: 0,
    shardChunksRefused: 0,
    shardPendingBytesPeak: 0,
  };
  readonly #options: ShardIntakeOptions;
  readonly #maxPendingBytes: number;
  #paused = false;

  constructor(options: ShardIntakeOptions) {
    this.#options = options;
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_SHARD_BYTES;
  }

  get cache(): ShardCache {
    return this.#options.cache;
  }

  async offer(offer: ShardOfferMessage): Promise<void> {
    const { cache, reply, worker } = this.#options;
    const memory = this.#options.memory();
    checkMemoryFit(
      worker,
      offer.shardId,
      {
        shardBytes: offer.bytes,
        kvBudgetBytes: kvBudgetOf(memory.kvBudgetBytes, offer.kvBudgetBytes),
      },
      { ...memory, ownKvBudgetBytes: memory.kvBudgetBytes },
    );
    if (await cache.has(offer)) {
      this.counters.shardCacheHits++;
      publishWorkerEvent(WORKER_EVENTS.shardStored, () => ({
        worker,
        shardId: offer.shardId,
        cached: true,
        bytes: 0,
      }));
      reply({ type: 'shard.need', shardId: offer.shardId, have: true });
      return;
    }
    const verified = await cache.begin(offer);
    const held = verified.reduce((n, f) => n + f.bytes, 0);
    this.counters.shardBytesReceived += offer.bytes - held;
    this.counters.shardBytesResumed += held;
    if (held > 0)
      publishWorkerEvent(WORKER_EVENTS.shardResumed, () => ({
        worker,
        shardId: offer.shardId,
        verifiedBytes: held,
        bytes: offer.bytes,
      }));
    reply({
      type: 'shard.need',
      shardId: offer.shardId,
      have: false,
      ...(verified.length > 0 ? { verified } : {}),
    });
  }

  chunk({ shardId, file, offset, data, sha256 }: ShardChunkMessage): Promise<void> {
    const { cache } = this.#options;
    return this.#accepted(
      cache
        .write(shardId, file, offset, data, sha256)
        .catch((error: unknown) => {
          if ((error as { code?: string }).code === 'SWARMBEE_ERR_SHARD_CHUNK_CORRUPT')
            this.counters.shardChunksRefused++;
          throw error;
        })
        .finally(() => {
          const left = cache.pendingBytes;
          if (this.#paused && left <= this.#maxPendingBytes / 2) this.#hold(false, left);
        }),
    );
  }

  /** A chunk was taken (its bytes now wait for the disk): past the cap, stop reading. Returns `written`. */
  #accepted(written: Promise<void>): Promise<void> {
    const pending = this.#options.cache.pendingBytes;
    if (pending > this.counters.shardPendingBytesPeak)
      this.counters.shardPendingBytesPeak = pending;
    if (pending > this.#maxPendingBytes && !this.#paused) this.#hold(true, pending);
    return written;
  }

  #hold(paused: boolean, pendingBytes: number): void {
    this.#paused = paused;
    if (paused) this.#options.flow.pause();
    else this.#options.flow.resume();
    publishWorkerEvent(WORKER_EVENTS.shardBackpressure, () => ({
      worker: this.#options.worker,
      paused,
      pendingBytes,
    }));
  }

  /** Reading resumes (the connection it paused is gone; a new one starts unpaused). */
  reset(): void {
    this.#paused = false;
  }

  async done({ shardId }: ShardDoneMessage): Promise<void> {
    const { cache, reply, worker } = this.#options;
    // The chunk that failed has reported why; the coordinator offers the shard again.
    if (cache.failed(shardId)) {
      await cache.suspend(shardId);
      return;
    }
    await cache.finish(shardId);
    const offer = await cache.offerOf(shardId);
    this.counters.shardsReceived++;
    publishWorkerEvent(WORKER_EVENTS.shardStored, () => ({
      worker,
      shardId,
      cached: false,
      bytes: offer?.bytes ?? 0,
    }));
    reply({ type: 'shard.stored', shardId });
  }
}
