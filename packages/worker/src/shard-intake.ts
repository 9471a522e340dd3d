/**
 * The worker's side of a shard transfer: an offer is answered from the cache when it
 * holds the shard (no transfer) or starts receiving it; chunks go to the cache as they
 * come (in order within their shard); `shard.done` verifies and stores it. Replies go
 * to `reply`; failures reject, for the caller to report.
 */

import type {
  ControlMessage,
  ShardChunkMessage,
  ShardDoneMessage,
  ShardOfferMessage,
} from '@swarmbee/protocol';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';
import type { ShardCache } from './shard-cache.js';

export interface ShardIntakeCounters {
  shardsReceived: number;
  shardBytesReceived: number;
  shardCacheHits: number;
}

export class ShardIntake {
  readonly counters: ShardIntakeCounters = {
    shardsReceived: 0,
    shardBytesReceived: 0,
    shardCacheHits: 0,
  };

  constructor(
    readonly cache: ShardCache,
    readonly reply: (message: ControlMessage) => void,
    /** The worker's name, in the events this publishes. */
    readonly worker: string,
  ) {}

  async offer(offer: ShardOfferMessage): Promise<void> {
    if (await this.cache.has(offer)) {
      this.counters.shardCacheHits++;
      publishWorkerEvent(WORKER_EVENTS.shardStored, () => ({
        worker: this.worker,
        shardId: offer.shardId,
        cached: true,
        bytes: 0,
      }));
      this.reply({ type: 'shard.need', shardId: offer.shardId, have: true });
      return;
    }
    await this.cache.begin(offer);
    this.counters.shardBytesReceived += offer.bytes;
    this.reply({ type: 'shard.need', shardId: offer.shardId, have: false });
  }

  chunk({ shardId, file, offset, data }: ShardChunkMessage): Promise<void> {
    return this.cache.write(shardId, file, offset, data);
  }

  async done({ shardId }: ShardDoneMessage): Promise<void> {
    const offer = await this.cache.offerOf(shardId);
    await this.cache.finish(shardId);
    this.counters.shardsReceived++;
    publishWorkerEvent(WORKER_EVENTS.shardStored, () => ({
      worker: this.worker,
      shardId,
      cached: false,
      bytes: offer?.bytes ?? 0,
    }));
    this.reply({ type: 'shard.stored', shardId });
  }
}
