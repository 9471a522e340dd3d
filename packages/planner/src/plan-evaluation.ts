/**
 * A plan's predictions from the cost model: the decode loop's hops and stages in turn
 * (TPOT), its busiest resource (throughput), the prompt's chunks through the pipeline
 * (TTFT) and whether every stage fits its device. See cost-model.ts for the model itself.
 */
import type { Plan } from '@swarmbee/core';
import type { AllReduceAlgorithmName } from './all-reduce-cost.js';
import type { CostModel } from './cost-model.js';
import type { GroupHow } from './group-cost.js';
import type { HeadMode } from './group-head.js';
import { NS_PER_S } from './units.js';

/**
 * A stage before prediction: a device (by index) and the layers [layerStart, layerEnd); with
 * `group`, a tensor-parallel group runs it (devices by rank, `group[0] === device`, the leader).
 */
export interface StageAssignment {
  device: number;
  layerStart: number;
  layerEnd: number;
  group?: readonly number[];
  /** Of a group from a plan made elsewhere: its members' weights and all-reduce (see GroupHow). */
  how?: GroupHow;
}

export interface StageEvaluation extends StageAssignment {
  /** What the stage's device holds; of a group, its leader (rank 0). */
  memoryBytes: number;
  /** Of a group: what each member holds, by rank. */
  memberMemoryBytes?: number[];
  /** Of a group: how it sums its partials. */
  allReduce?: AllReduceAlgorithmName;
  /** Of a group's last stage: where its LM head runs, and its time on one position. */
  head?: HeadMode;
  headFirstTokenNs?: number;
  decodeNs: number;
  prefillNs: number;
}

export interface HopEvaluation {
  /** Node indices; the coordinator is `devices.length`. */
  from: number;
  to: number;
  bytes: number;
  latencyNs: number;
  occupancyNs: number;
}

export type Bottleneck =
  | { kind: 'stage'; index: number }
  | { kind: 'link'; index: number }
  | { kind: 'round-trip' };

export interface Evaluation {
  stages: StageEvaluation[];
  /** Decode-step hops: coordinator → stage 0, stage i → i+1, last → coordinator. */
  hops: HopEvaluation[];
  microBatchSize: number;
  microBatchesInFlight: number;
  /** How far the most over-full stage exceeds its device's memory; 0 when all fit. */
  overBytes: number;
  feasible: boolean;
  tpotNs: number;
  ttftNs: number;
  /** Busy time of the busiest resource per micro-batch. */
  maxOccupancyNs: number;
  /** max(M × busiest, TPOT): the time M micro-batches take per token; what throughput divides by. */
  cycleNs: number;
  tokensPerS: number;
  bottleneck: Bottleneck;
}

/**
 * A plan's stages as the cost model takes them (device indices, a tensor-parallel stage's
 * group by rank, with the weights and all-reduce the plan records): for predicting a plan
 * made elsewhere, or one that runs now.
 * @throws DeviceUnknownError when the plan names a device the profile does not have
 */
export function stageAssignments(costs: CostModel, plan: Pick<Plan, 'stages'>): StageAssignment[] {
  return plan.stages.map((s) => {
    const stage: StageAssignment = {
      device: costs.deviceIndex(s.device),
      layerStart: s.layerStart,
      layerEnd: s.layerEnd,
    };
    if (s.tensor) {
      stage.group = s.tensor.devices.map((name) => costs.deviceIndex(name));
      const { weights, allReduce, head } = s.tensor;
      stage.how = { weights, allReduce, ...(head ? { head } : {}) };
    }
    return stage;
  });
}

/** One stage's memory and times: a single device's, or a tensor-parallel group's. */
export function evaluateStage(
  costs: CostModel,
  stage: StageAssignment,
  first: boolean,
  last: boolean,
  batch: number,
  sequences: number,
): StageEvaluation {
  const { device, layerStart, layerEnd, group } = stage;
  if (!group) {
    return {
      device,
      layerStart,
      layerEnd,
      memoryBytes: costs.stageMemoryBytes(layerStart, layerEnd, first, last, sequences),
      decodeNs: costs.stageDecodeNs(device, layerStart, layerEnd, first, last, batch),
      prefillNs: costs.stagePrefillNs(device, layerStart, layerEnd, first),
    };
  }
  const place = { start: layerStart, end: layerEnd, first, last, batch, sequences };
  const { memberMemoryBytes, ...times } = costs.groups.stage(group, place, stage.how);
  return {
    device,
    layerStart,
    layerEnd,
    group: [...group],
    ...(stage.how ? { how: stage.how } : {}),
    memoryBytes: memberMemoryBytes[0]!,
    memberMemoryBytes,
    ...times,
  };
}

/** Predicts everything about a plan; `overBytes > 0` marks a plan that does not fit. */
export function evaluatePlan(
  costs: CostModel,
  stages: readonly StageAssignment[],
  batch: number,
  inFlight: number,
): Evaluation {
  const sequences = batch * inFlight;
  const S = stages.length;
  const coord = costs.coordinator;
  const evaluated: StageEvaluation[] = [];
  const hops: HopEvaluation[] = [];
  let overBytes = 0;
  let tpotNs = 0;
  let maxOcc = -1;
  let bottleneck: Bottleneck = { kind: 'round-trip' };
  let prefillSum = 0;
  let prefillMax = 0;
  const chunk = costs.prefillChunkLength;
  const busiest = (ns: number, at: Bottleneck) => {
    if (ns > maxOcc) {
      maxOcc = ns;
      bottleneck = at;
    }
  };
  const hop = (
    from: number,
    to: number,
    decodeBytes: number,
    prefillBytes: number,
    work = { decodeNs: 0, prefillNs: 0 },
  ) => {
    const latencyNs = costs.latencyNs(from, to);
    const occupancyNs = costs.occupancyNs(from, to, decodeBytes) + work.decodeNs;
    const prefillOcc = costs.occupancyNs(from, to, prefillBytes) + work.prefillNs;
    hops.push({ from, to, bytes: decodeBytes, latencyNs, occupancyNs });
    tpotNs += latencyNs + occupancyNs;
    busiest(occupancyNs, { kind: 'link', index: hops.length - 1 });
    prefillSum += latencyNs + prefillOcc;
    prefillMax = Math.max(prefillMax, prefillOcc);
  };
  stages.forEach((stage, k) => {
    const first = k === 0;
    const last = k === S - 1;
    const from = first ? coord : stages[k - 1]!.device;
    if (first)
      hop(from, stage.device, costs.tokenFrameBytes(batch), costs.tokenFrameBytes(chunk), {
        decodeNs: costs.coordinatorStepNs(batch),
        prefillNs: costs.coordinatorStepNs(1),
      });
    else
      hop(from, stage.device, costs.activationFrameBytes(batch), costs.activationFrameBytes(chunk));
    const evaluation = evaluateStage(costs, stage, first, last, batch, sequences);
    const { decodeNs, prefillNs } = evaluation;
    const members = stage.group ?? [stage.device];
    const held = evaluation.memberMemoryBytes ?? [evaluation.memoryBytes];
    members.forEach((d, rank) => {
      overBytes = Math.max(overBytes, held[rank]! - costs.devices[d]!.memoryBytes);
    });
    evaluated.push(evaluation);
    tpotNs += decodeNs;
    busiest(decodeNs, { kind: 'stage', index: k });
    prefillSum += prefillNs;
    prefillMax = Math.max(prefillMax, prefillNs);
  });
  const lastDevice = stages[S - 1]!.device;
  const outBytes = costs.tokenFrameBytes(batch);
  const out = {
    latencyNs: costs.latencyNs(lastDevice, coord),
    occupancyNs: costs.occupancyNs(lastDevice, coord, outBytes),
  };
  hops.push({ from: lastDevice, to: coord, bytes: outBytes, ...out });
  tpotNs += out.latencyNs + out.occupancyNs;
  busiest(out.occupancyNs, { kind: 'link', index: hops.length - 1 });
  const ttftNs =
    prefillSum +
    (costs.prefillChunks - 1) * prefillMax +
    (evaluated[S - 1]!.headFirstTokenNs ?? costs.headDecodeNs(lastDevice, 1)) +
    costs.latencyNs(lastDevice, coord) +
    costs.occupancyNs(lastDevice, coord, costs.tokenFrameBytes(1));
  const cycleNs = Math.max(inFlight * maxOcc, tpotNs);
  if (inFlight * maxOcc < tpotNs) bottleneck = { kind: 'round-trip' };
  return {
    stages: evaluated,
    hops,
    microBatchSize: batch,
    microBatchesInFlight: inFlight,
    overBytes: Math.max(0, overBytes),
    feasible: overBytes <= 0,
    tpotNs,
    ttftNs,
    maxOccupancyNs: maxOcc,
    cycleNs,
    tokensPerS: cycleNs > 0 ? (batch * inFlight * NS_PER_S) / cycleNs : Number.POSITIVE_INFINITY,
    bottleneck,
  };
}
