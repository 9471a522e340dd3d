/**
 * When taking a returning (or new) worker back pays: its plan must be predicted to beat
 * the running plan by a margin, both judged by the cost model on the same profile —
 * a re-plan stalls every stream for the redeploy and the replay of its tokens.
 */
import type { ClusterProfile, Plan } from '@swarmbee/core';
import { CostModel, type Objective, type PlanResult, type Workload } from '@swarmbee/planner';
import { isPlanResult } from './planning.js';

/** Smallest predicted gain that pays for a re-plan: 10 %. */
export const DEFAULT_REPLAN_GAIN = 0.1;

/**
 * How much better `candidate` is predicted to be than `current` for the objective, as a
 * fraction (0.25 = 25 % more tokens/s, or 25 % less time per token); Infinity when the
 * current plan no longer fits the profile.
 */
export function predictedGain(
  profile: ClusterProfile,
  workload: Partial<Workload> | undefined,
  objective: Objective,
  current: Plan | PlanResult,
  candidate: PlanResult,
): number {
  const cost = new CostModel(profile, workload);
  const stages = current.stages.map((s) => ({
    device: cost.deviceIndex(s.device),
    layerStart: s.layerStart,
    layerEnd: s.layerEnd,
  }));
  const batch = isPlanResult(current) ? current.microBatchSize : 1;
  const inFlight = isPlanResult(current) ? current.microBatchesInFlight : current.stages.length;
  const now = cost.evaluate(stages, batch, inFlight);
  if (!now.feasible) return Number.POSITIVE_INFINITY;
  return objective === 'throughput'
    ? candidate.tokensPerS / now.tokensPerS - 1
    : now.tpotNs / 1e6 / candidate.tpotMs - 1;
}

/** A stage's weights on a device, as the worker caches its shard: device, layers, role. */
export function stageKey(
  stage: { device: string; layerStart: number; layerEnd: number },
  index: number,
  stages: number,
): string {
  return `${stage.device}/${stage.layerStart}-${stage.layerEnd}/${index === 0 ? 'first' : ''}${index === stages - 1 ? 'last' : ''}`;
}

/**
 * Predicted time to move the weights of `candidate`'s stages that their devices do not hold
 * (`held`: stage keys they served before, whose shards their caches keep) from the
 * coordinator, ms: bytes over each link's measured bandwidth, one after another on the
 * coordinator's uplink. What a re-plan stalls the streams for, besides loading and replay.
 */
export function redeployMs(
  profile: ClusterProfile,
  candidate: Plan | PlanResult,
  held: ReadonlySet<string>,
): number {
  const cost = new CostModel(profile);
  const S = candidate.stages.length;
  let ms = 0;
  candidate.stages.forEach((s, k) => {
    if (held.has(stageKey(s, k, S))) return;
    const device = cost.deviceIndex(s.device);
    const bytes = cost.stageMemoryBytes(s.layerStart, s.layerEnd, k === 0, k === S - 1, 0);
    ms += (bytes / cost.bandwidthBytesPerS(cost.coordinator, device)) * 1000;
  });
  return ms;
}
