/**
 * A plan says which device runs which layers. The planner produces it; the
 * coordinator deploys it; `generate --stages K` makes an even one in process.
 */

/** One pipeline stage: a device and the half-open layer range [start, end) it runs. */
export interface StagePlan {
  /** Position in the pipeline, 0-based. Stage 0 holds the embedding; the last, the head. */
  index: number;
  /** Name of the device (worker) that runs it; "local" in process. */
  device: string;
  layerStart: number;
  layerEnd: number;
}

export interface Plan {
  /** modelHash of the model the plan is for. */
  modelHash: string;
  nLayers: number;
  stages: StagePlan[];
}
