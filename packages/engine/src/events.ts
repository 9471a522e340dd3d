/**
 * What the engine reports through `node:diagnostics_channel`: the micro-batches the
 * scheduler sends, in process and in a cluster alike. Publishing costs nothing when no
 * one subscribes.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { ENGINE_EVENTS, type BatchSentEvent } from '@swarmbee/engine';
 * subscribe(ENGINE_EVENTS.batchSent, (event) => console.log((event as BatchSentEvent).rows));
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { BatchRow } from './stage-engine.js';

/** Channel names, stable like error codes. */
export const ENGINE_EVENTS = {
  /** The scheduler sent a micro-batch into its pipeline. */
  batchSent: 'swarmbee:scheduler:batch-sent',
} as const;

/** One row of a sent micro-batch. */
export interface BatchSentRow {
  seqId: string;
  /** The row's first position. */
  start: number;
  /** Positions the row feeds: more than one for a prefill chunk. */
  count: number;
  /** Whether the row samples a token (its sequence's last fed position). */
  samples: boolean;
}

export interface BatchSentEvent {
  /** Which scheduler of this process sent it (1, 2, … in creation order). */
  scheduler: number;
  batchId: number;
  rows: BatchSentRow[];
}

const batchSentChannel = channel(ENGINE_EVENTS.batchSent);

export function publishBatch(scheduler: number, batchId: number, rows: readonly BatchRow[]): void {
  if (!batchSentChannel.hasSubscribers) return;
  const event: BatchSentEvent = {
    scheduler,
    batchId,
    rows: rows.map((r) => ({
      seqId: r.seqId,
      start: r.start,
      count: r.count,
      samples: r.sampling !== undefined,
    })),
  };
  batchSentChannel.publish(event);
}
