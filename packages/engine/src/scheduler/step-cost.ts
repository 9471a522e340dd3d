/**
 * The scheduler's own time per micro-batch that comes back: taking its tokens, the
 * callbacks that stream them, and composing and sending the next micro-batches — the
 * coordinator's per-step work the cost model charges to the coordinator → stage 0 hop.
 * A running mean per row count, recent steps weighted more.
 */
import type { CoordinatorTiming } from '@swarmbee/core';

/** Fewest steps of a row count before its mean is reported. */
export const MIN_STEP_SAMPLES = 16;
/** Weight of the newest step in the running mean once there are enough samples. */
const RECENT_WEIGHT = 1 / 64;

export class StepCostMeter {
  readonly #byRows = new Map<number, { count: number; meanMs: number }>();

  record(rows: number, ms: number): void {
    const entry = this.#byRows.get(rows) ?? { count: 0, meanMs: 0 };
    entry.count++;
    entry.meanMs += (ms - entry.meanMs) * Math.max(1 / entry.count, RECENT_WEIGHT);
    this.#byRows.set(rows, entry);
  }

  /** Mean step time by row count, over counts with enough samples; undefined before any. */
  timing(): CoordinatorTiming | undefined {
    const sizes = [...this.#byRows]
      .filter(([, e]) => e.count >= MIN_STEP_SAMPLES)
      .sort(([a], [b]) => a - b);
    if (sizes.length === 0) return undefined;
    return { batchSizes: sizes.map(([rows]) => rows), stepMs: sizes.map(([, e]) => e.meanMs) };
  }
}
