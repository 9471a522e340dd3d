/**
 * The drift monitor's view of a coordinator: the plan a corrected profile calls for (and how
 * much better than the serving one it is predicted), and the monitor wired to the coordinator.
 */
import type { ClusterProfile, Plan } from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import { profileFor } from '../cluster/deployment.js';
import { choosePlan, isPlanResult, type PlanningOptions } from '../cluster/planning.js';
import { predictedGain, type ReplanPolicy, redeployMs } from '../cluster/replan-policy.js';
import { DriftMonitor, type DriftOptions } from './drift-monitor.js';

export function driftCandidate(
  model: ModelDir,
  workers: readonly string[],
  planning: PlanningOptions,
  profile: ClusterProfile,
  current: Plan | PlanResult | undefined,
  held: ReadonlySet<string> = new Set(),
): { plan: PlanResult; gain: number; redeployMs: number } | undefined {
  const scoped = profileFor(profile, new Set(workers));
  if (!current || !scoped) return undefined;
  const plan = choosePlan(model, workers, planning, scoped);
  if (!isPlanResult(plan)) return undefined;
  const objective = planning.objective ?? 'throughput';
  return {
    plan,
    gain: predictedGain(scoped, plan.workload, objective, current, plan),
    redeployMs: redeployMs(scoped, plan, held),
  };
}

/** What a coordinator lends its drift monitor. */
export interface CoordinatorView {
  model: ModelDir;
  planning: () => PlanningOptions;
  workers: () => string[];
  plan: () => Plan | PlanResult | undefined;
  profile: () => ClusterProfile | undefined;
  /** Plans from this profile from now on; with `replan`, re-plans and redeploys (replaying live sequences). */
  adopt: (profile: ClusterProfile, replan: boolean, reason: string) => Promise<void>;
  policy: ReplanPolicy;
  /** Measures these workers' compute again; the profile with their fresh timings. */
  remeasure?: (workers: readonly string[]) => Promise<ClusterProfile>;
  log: (line: string) => void;
}

export function coordinatorDrift(options: DriftOptions, view: CoordinatorView): DriftMonitor {
  return new DriftMonitor(options, {
    serving: () => {
      const plan = view.plan();
      const profile = view.profile();
      return plan && profile ? { plan, profile } : undefined;
    },
    candidate: (profile, held) =>
      driftCandidate(view.model, view.workers(), view.planning(), profile, view.plan(), held),
    apply: view.adopt,
    policy: view.policy,
    ...(view.remeasure ? { remeasure: view.remeasure } : {}),
    log: view.log,
  });
}
