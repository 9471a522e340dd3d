/**
 * How the coordinator chooses a plan: the planner package over a measured cluster
 * profile, or — when no profile is wanted — an even split in name order.
 */
import { type ClusterProfile, InvalidArgumentError, type Plan } from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import {
  type Objective,
  PARALLELISMS,
  type Parallelism,
  type PlannerName,
  type PlanResult,
  plan,
  type Workload,
} from '@swarmbee/planner';
import { evenPlan } from './even-plan.js';

export interface PlanningOptions {
  /**
   * Planner to run over the measured profile: `dp` (EdgeShard, exact), `ga`, `pso`,
   * `auto`, or a baseline (`solo`, `even`, `memory`). `even` without a profile skips
   * profiling and splits evenly in name order. Default `dp`.
   */
  planner?: PlannerName;
  /** What the plan optimizes. Default `throughput`. */
  objective?: Objective;
  /**
   * How stages may be run: `pipeline` (one worker each), `tensor` (one stage of every layer on
   * a tensor-parallel group), `hybrid` (stages that may each be a group, as the objective
   * decides). Anything but `pipeline` needs the `dp` or `auto` planner. Default `pipeline`.
   */
  parallelism?: Parallelism;
  /** Worker that must run stage 0. Default: none. */
  pinFirst?: string;
  /** Worker that must run the last stage. Default: none. */
  pinLast?: string;
  /** Context, prompt and chunk lengths plans are judged on (tokens). Default: the planner's. */
  workload?: Partial<Workload>;
  /** Micro-batch sizes a throughput plan may choose. Default: the planner's ([1, 2, 4, 8, 16]). */
  microBatchCandidates?: number[];
}

export const DEFAULT_PLANNER: PlannerName = 'dp';

/** Throws InvalidArgumentError when the options cannot go together (a group needs the DP). */
export function checkPlanning(options: PlanningOptions): void {
  const { parallelism = 'pipeline', planner = DEFAULT_PLANNER } = options;
  if (!PARALLELISMS.includes(parallelism))
    throw new InvalidArgumentError(
      `unknown parallelism "${parallelism}"; one of ${PARALLELISMS.join(', ')}`,
    );
  if (parallelism !== 'pipeline' && planner !== 'dp' && planner !== 'auto')
    throw new InvalidArgumentError(
      `--parallelism ${parallelism} plans tensor-parallel groups with the dp planner (or auto), not ${planner}`,
    );
}

/** Whether choosing a plan with these options needs a cluster profile: all but `even` do. */
export function needsProfile(options: PlanningOptions): boolean {
  return options.planner !== 'even';
}

/**
 * The plan for these workers (names sorted, so the same workers get the same stages and
 * a restarted worker finds its shard in its cache).
 */
export function choosePlan(
  model: ModelDir,
  workers: readonly string[],
  options: PlanningOptions,
  profile?: ClusterProfile,
): Plan | PlanResult {
  const names = [...workers].sort((a, b) => a.localeCompare(b));
  if (!profile) return evenPlan(model.manifest.modelHash, model.manifest.config.nLayers, names);
  // The profile's device order is the order baselines (even, memory) use.
  const ordered = {
    ...profile,
    devices: [...profile.devices].sort((a, b) => a.name.localeCompare(b.name)),
  };
  return plan(
    { cluster: ordered, workload: options.workload },
    {
      planner: options.planner ?? DEFAULT_PLANNER,
      objective: options.objective ?? 'throughput',
      ...(options.parallelism === undefined ? {} : { parallelism: options.parallelism }),
      ...(options.pinFirst === undefined ? {} : { pinFirst: options.pinFirst }),
      ...(options.pinLast === undefined ? {} : { pinLast: options.pinLast }),
      ...(options.microBatchCandidates === undefined
        ? {}
        : { microBatchCandidates: options.microBatchCandidates }),
    },
  );
}

export function isPlanResult(candidate: Plan | PlanResult): candidate is PlanResult {
  return 'planner' in candidate;
}
