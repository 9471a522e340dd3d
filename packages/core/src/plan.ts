/**
 * A plan says which device runs which layers. The planner produces it; the
 * coordinator deploys it; `generate --stages K` makes an even one in process.
 */

/**
 * One pipeline stage: a device and the half-open layer range [start, end) it runs — or,
 * with `tensor`, a tensor-parallel group of devices that run it together.
 */
export interface StagePlan {
  /** Position in the pipeline, 0-based. Stage 0 holds the embedding; the last, the head. */
  index: number;
  /**
   * Name of the device (worker) that runs it; "local" in process. For a tensor-parallel
   * stage, the group's leader (`tensor.devices[0]`): it receives the stage's input and
   * sends its output.
   */
  device: string;
  layerStart: number;
  layerEnd: number;
  /** Present when a group runs the stage by tensor parallelism; absent: `device` alone. */
  tensor?: TensorStagePlan;
}

/** How a group of devices splits one stage's layers (heads and feed-forward columns). */
export interface TensorStagePlan {
  /** The group's devices by rank (2 or more, distinct); rank 0 is the stage's `device`. */
  devices: string[];
  /**
   * Each member's relative share of heads and columns (any positive scale; its measured
   * speed), by rank: the split `splitTensors` makes from them.
   */
  weights: number[];
  /** How the group sums its partials: `star` at the leader, or `ring`. */
  allReduce: 'star' | 'ring';
  /**
   * On the last stage, where the LM head runs: on the `leader` alone, or `split` by vocabulary
   * across the members (one more sum, of vocabulary size, per token). Default `leader`.
   */
  head?: 'leader' | 'split';
}

/** Every device a stage runs on: the group's members, or its one device. */
export function stageDevices(stage: StagePlan): readonly string[] {
  return stage.tensor ? stage.tensor.devices : [stage.device];
}

export interface Plan {
  /** modelHash of the model the plan is for. */
  modelHash: string;
  nLayers: number;
  stages: StagePlan[];
}
