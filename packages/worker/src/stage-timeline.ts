/**
 * What one stage did with each micro-batch, on the wall clock: when the frame
 * arrived, when the engine computed it, and when the result had left. A bounded
 * ring of recent events; `swarmbee bench` turns them into a per-stage timeline
 * showing where the pipeline idles.
 */
import type { StageEvent } from '@swarmbee/core';

/** Milliseconds since the Unix epoch, sub-millisecond: comparable across processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Events kept per stage. */
export const TIMELINE_CAPACITY = 4096;

export class StageTimeline {
  readonly #events: StageEvent[] = [];

  record(event: StageEvent): void {
    this.#events.push(event);
    if (this.#events.length > TIMELINE_CAPACITY)
      this.#events.splice(0, this.#events.length - TIMELINE_CAPACITY);
  }

  /** Events that arrived at or after `since` (epoch ms). */
  since(since: number): StageEvent[] {
    return this.#events.filter((e) => e.arrivedAt >= since);
  }
}
