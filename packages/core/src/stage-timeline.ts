/**
 * What one stage did with one micro-batch, on the wall clock (epoch ms): workers record
 * these, the coordinator gathers them per stage (`GET /swarmbee/timeline`), and
 * `swarmbee bench` draws them.
 */
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

/** One stage's recent micro-batches, as the coordinator reports them. */
export interface StageTimelineEntry {
  stage: number;
  device: string;
  events: StageEvent[];
}
