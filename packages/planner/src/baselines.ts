/**
 * The plans SwarmBee is compared against, on the same cost model: the best single
 * device, an even split over every device, and a split in proportion to memory (what
 * exo and llama.cpp's RPC backend do). They choose the micro-batch size and the number
 * in flight like the DP does, but not the devices, the order or the cut.
 */
import type { CostModel } from './cost-model.js';
import { batchRuns, compareCandidates } from './objective.js';
import type { Evaluation, StageAssignment } from './plan-evaluation.js';
import type { Objective } from './types.js';

export interface BaselineOptions {
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  microBatchesInFlight?: number;
}

/** Best evaluation over micro-batch sizes and counts in flight, preferring any that fits; undefined for no stages. */
export function bestOverBatches(
  cost: CostModel,
  objective: Objective,
  stages: readonly StageAssignment[],
  options: BaselineOptions,
): Evaluation | undefined {
  if (stages.length === 0) return undefined;
  // More than 2·S + 1 in flight cannot speed up S stages unless links are all delay.
  const runs = batchRuns(
    cost,
    objective,
    options.microBatchCandidates,
    options.microBatchesInFlight,
  ).filter((r) => r.inFlight <= 2 * stages.length + 1);
  let best: Evaluation | undefined;
  for (const { batch, inFlight } of runs) {
    const e = cost.evaluate(stages, batch, inFlight);
    if (!best || compareCandidates(objective, e, best) < 0) best = e;
  }
  return best;
}

/** The best single device that satisfies the pins; infeasible when none can hold the model. */
export function planSolo(
  cost: CostModel,
  objective: Objective,
  options: BaselineOptions,
): Evaluation | undefined {
  const L = cost.nLayers;
  let best: Evaluation | undefined;
  cost.devices.forEach((_, device) => {
    if (options.pinFirst !== undefined && options.pinFirst !== device) return;
    if (options.pinLast !== undefined && options.pinLast !== device) return;
    const e = bestOverBatches(cost, objective, [{ device, layerStart: 0, layerEnd: L }], options);
    if (e && (!best || compareCandidates(objective, e, best) < 0)) best = e;
  });
  return best;
}

/** Every device in the given order, pinned ones moved to the ends; at most one device per layer. */
export function participantsInOrder(cost: CostModel, options: BaselineOptions): number[] {
  const { pinFirst, pinLast } = options;
  const middle = cost.devices.map((_, i) => i).filter((i) => i !== pinFirst && i !== pinLast);
  const room =
    cost.nLayers -
    (pinFirst !== undefined ? 1 : 0) -
    (pinLast !== undefined && pinLast !== pinFirst ? 1 : 0);
  const order = middle.slice(0, Math.max(0, room));
  if (pinFirst !== undefined) order.unshift(pinFirst);
  if (pinLast !== undefined && pinLast !== pinFirst) order.push(pinLast);
  if (pinFirst !== undefined && pinFirst === pinLast) return [pinFirst];
  return order;
}

/** Cuts `total` layers into consecutive ranges in proportion to `weights` (largest remainder, each ≥ 1). */
export function proportionalRanges(total: number, weights: readonly number[]): [number, number][] {
  const n = weights.length;
  const sum = weights.reduce((s, w) => s + w, 0);
  const spare = total - n;
  const exact = weights.map((w) => (sum > 0 ? (spare * w) / sum : spare / n));
  const counts = exact.map((x) => 1 + Math.floor(x));
  let left = total - counts.reduce((s, c) => s + c, 0);
  const byRemainder = exact
    .map((x, i) => ({ i, r: x - Math.floor(x) }))
    .sort((p, q) => q.r - p.r || p.i - q.i);
  for (let k = 0; left > 0; k = (k + 1) % n, left--) counts[byRemainder[k]!.i]!++;
  const ranges: [number, number][] = [];
  let start = 0;
  for (const c of counts) {
    ranges.push([start, start + c]);
    start += c;
  }
  return ranges;
}

function split(
  cost: CostModel,
  order: readonly number[],
  weights: readonly number[],
): StageAssignment[] {
  return proportionalRanges(cost.nLayers, weights).map(([layerStart, layerEnd], k) => ({
    device: order[k]!,
    layerStart,
    layerEnd,
  }));
}

/** Equal layer counts over every device in the given order. */
export function planEven(
  cost: CostModel,
  objective: Objective,
  options: BaselineOptions,
): Evaluation | undefined {
  const order = participantsInOrder(cost, options);
  return bestOverBatches(
    cost,
    objective,
    split(
      cost,
      order,
      order.map(() => 1),
    ),
    options,
  );
}

/** Layer counts in proportion to each device's memory, over every device in the given order. */
export function planMemoryShare(
  cost: CostModel,
  objective: Objective,
  options: BaselineOptions,
): Evaluation | undefined {
  const order = participantsInOrder(cost, options);
  const weights = order.map((d) => cost.devices[d]!.memoryBytes);
  return bestOverBatches(cost, objective, split(cost, order, weights), options);
}
