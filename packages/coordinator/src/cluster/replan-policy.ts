/**
 * When a re-plan pays — a worker joined (or returned) while serving, or the drift loop found
 * the profile off: the new plan must be predicted to beat the running one by a margin, both
 * judged by the cost model on the same profile, and must gain back within a payback time
 * what the streams lose while its new stages' weights move (a re-plan stalls every stream
 * for the redeploy and the replay of its tokens).
 */
import { type ClusterProfile, InvalidArgumentError, type Plan } from '@swarmbee/core';
import {
  CostModel,
  type Objective,
  type PlanResult,
  stageAssignments,
  type Workload,
} from '@swarmbee/planner';
import { isPlanResult } from './planning.js';

/** Smallest predicted gain that pays for a re-plan: 10 %. */
export const DEFAULT_REPLAN_GAIN = 0.1;
/** Time a re-plan's gain must pay back its weights' transfer in, ms. */
export const DEFAULT_REPLAN_PAYBACK_MS = 30_000;

/** The coordinator's rule for re-plans, whatever asks for one. */
export interface ReplanPolicy {
  /** Smallest predicted gain, a fraction (0.1 = 10 % more tokens/s, or less time per token). */
  gain: number;
  /** Predicted gain × this must be at least the time moving the new stages' weights takes, ms. */
  paybackMs: number;
}

/** A re-plan judged: whether to make it, and why, in words for the log. */
export interface ReplanVerdict {
  replan: boolean;
  why: string;
}

/** Judges a candidate plan by `policy`: its predicted `gain` and the stall `redeployMs` it costs. */
export function judgeReplan(
  candidate: { plan: { stages: readonly { device: string }[] }; gain: number; redeployMs: number },
  policy: ReplanPolicy,
): ReplanVerdict {
  const { gain, redeployMs } = candidate;
  const percent = (x: number) => `${(x * 100).toFixed(0)} %`;
  if (!(gain >= policy.gain))
    return {
      replan: false,
      why: `no plan predicted ${percent(policy.gain)} better (best ${percent(gain)}), keeping the plan`,
    };
  if (gain * policy.paybackMs < redeployMs)
    return {
      replan: false,
      why: `a plan predicted ${percent(gain)} better would stall ${(redeployMs / 1000).toFixed(1)} s moving weights, more than it gains in ${(policy.paybackMs / 1000).toFixed(0)} s; keeping the plan`,
    };
  return {
    replan: true,
    why: `a plan over ${candidate.plan.stages.map((s) => s.device).join(', ')} is predicted ${percent(gain)} better`,
  };
}

/** Throws InvalidArgumentError naming the first policy setting out of range (by its CLI flag). */
export function checkReplanPolicy(policy: {
  gain?: number | undefined;
  paybackMs?: number | undefined;
}): void {
  const { gain, paybackMs } = policy;
  if (gain !== undefined && !(gain >= 0 && Number.isFinite(gain)))
    throw new InvalidArgumentError(`--replan-gain must be a fraction of at least 0, got ${gain}`);
  if (paybackMs !== undefined && !(paybackMs >= 0))
    throw new InvalidArgumentError(`--replan-payback-ms must be at least 0, got ${paybackMs}`);
}

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
  const stages = stageAssignments(cost, current);
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
