/**
 * What one stage did with each micro-batch, on the wall clock: when the frame
 * arrived, when the engine computed it, and when the result had left. A bounded
 * ring of recent events; `swarmbee bench` turns them into a per-stage timeline
 * showing where the pipeline idles.
 */

/** Milliseconds since the Unix epoch, sub-millisecond: comparable across processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface StageEvent {
  batchId: number;
  rows: number;
  /** The frame arrived from upstream. */
  arrivedAt: number;
  /** The engine started and finished computing it (the end minus the engine's own timing). */
  computeStart: number;
  computeEnd: number;
  /** The result was handed to the downstream link. */
  sentAt: number;
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
