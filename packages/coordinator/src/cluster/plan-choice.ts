/**
 * Which plan the coordinator deploys: the plan it was given (`--plan`) while every device
 * it names is connected; else, for a set of workers it has deployed on before,
 * the plan it remembers for them (see PlanMemory); otherwise the planner's, from the
 * cluster profile. And when a worker joins a serving cluster, whether a new plan pays:
 * the remembered plan for exactly the connected workers is restored (the one that served
 * before a loss or a restart); with the even planner, the even split is taken once it
 * covers more workers; otherwise a new plan is adopted when it pays by the coordinator's
 * ReplanPolicy: predicted better than the running one, on the same profile, by its gain, and
 * gaining back within its payback time the stall of moving the new stages' weights.
 */
import {
  type ClusterProfile,
  type MemoryShortfall,
  type Plan,
  PlanInfeasibleError,
} from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import type { Deployment } from './deployment.js';
import { evenPlan } from './even-plan.js';
import { devicesConnected } from './given-plan.js';
import { type PlanMemory, samePlan } from './plan-memory.js';
import { choosePlan, isPlanResult, needsProfile, type PlanningOptions } from './planning.js';
import {
  judgeReplan,
  predictedGain,
  type ReplanPolicy,
  redeployMs,
  stageKey,
} from './replan-policy.js';

export interface PlanChoiceOptions {
  model: ModelDir;
  memory: PlanMemory;
  planning: () => PlanningOptions;
  /** The cluster profile restricted to these workers, if one covers them all. */
  profile: (names: readonly string[]) => ClusterProfile | undefined;
  /** Measures the connected workers (compute profiles are cached by each worker). */
  measure: () => Promise<ClusterProfile>;
  /** When a re-plan pays (gain and payback). */
  policy: ReplanPolicy;
  /** A plan to deploy whenever every device it names is connected (`--plan`; see given-plan.ts). */
  given?: Plan;
  log: (line: string) => void;
}

export class PlanChoice {
  /** Workers that refused a stage for memory, with what they measured, until they join again. */
  readonly #shortfalls = new Map<string, MemoryShortfall>();
  /** Workers that refused the profile's shards: no profile has timings for them. */
  readonly #unprofiled = new Set<string>();

  constructor(readonly options: PlanChoiceOptions) {}

  /**
   * A worker refused its stage for memory (MEMORY_SHORT): plans from now on give it at
   * most the capacity it reported (with a profile), or leave it out (the even split, which
   * cannot size stages), until it joins again.
   */
  refused(shortfall: MemoryShortfall): void {
    const known = this.#shortfalls.get(shortfall.worker);
    if (!known || shortfall.capacityBytes < known.capacityBytes)
      this.#shortfalls.set(shortfall.worker, shortfall);
  }

  /**
   * A worker refused even the profile's shards for memory: plans that need a profile are
   * made without it (it has no timings), the even split leaves it out, until it joins again.
   */
  refusedProfile(shortfall: MemoryShortfall): void {
    this.#unprofiled.add(shortfall.worker);
    this.refused(shortfall);
  }

  /** A worker joined again: what it measured before no longer holds. */
  forget(worker: string): void {
    this.#shortfalls.delete(worker);
    this.#unprofiled.delete(worker);
  }

  /** The profile covering these workers, those that could not be profiled left out. */
  #profileOf(names: readonly string[]): ClusterProfile | undefined {
    return this.options.profile(names.filter((name) => !this.#unprofiled.has(name)));
  }

  /** The plan for these workers: remembered for them, unless `fresh`; else planned (profiling first if needed). */
  async choose(names: readonly string[], fresh: boolean): Promise<Plan | PlanResult> {
    const { given } = this.options;
    if (given && devicesConnected(given, names)) return given;
    const planning = this.options.planning();
    if (!fresh) {
      const remembered = await this.options.memory.recall(names, planning);
      if (remembered && !remembered.stages.some((s) => this.#shortfalls.has(s.device)))
        return remembered;
    }
    let profile = this.#profileOf(names);
    if (!profile && needsProfile(planning)) profile = await this.options.measure();
    return this.#plan(names, planning, profile);
  }

  /** choosePlan within what refusing workers reported they can hold. */
  #plan(
    names: readonly string[],
    planning: PlanningOptions,
    profile: ClusterProfile | undefined,
  ): Plan | PlanResult {
    if (this.#shortfalls.size === 0)
      return choosePlan(this.options.model, names, planning, profile);
    // A worker without timings can be planned by no profile.
    const planned = profile ? names.filter((name) => !this.#unprofiled.has(name)) : names;
    const refusals = [...this.#shortfalls.values()]
      .filter((s) => names.includes(s.worker))
      .map(
        (s) =>
          `worker ${s.worker} needed ${s.neededBytes} bytes for its stage (shard, KV budget and runtime) and can hold at most ${s.capacityBytes} bytes of weights and KV cache`,
      )
      .join('; ');
    if (profile) {
      const capped = {
        ...profile,
        devices: profile.devices.map((d) => {
          const shortfall = this.#shortfalls.get(d.name);
          return shortfall
            ? { ...d, memoryBytes: Math.min(d.memoryBytes, shortfall.capacityBytes) }
            : d;
        }),
      };
      try {
        return choosePlan(this.options.model, planned, planning, capped);
      } catch (error) {
        if (!(error instanceof PlanInfeasibleError)) throw error;
        throw new PlanInfeasibleError(`${error.message}; ${refusals}`, { cause: error });
      }
    }
    const left = names.filter((name) => !this.#shortfalls.has(name));
    if (left.length === 0)
      throw new PlanInfeasibleError(
        `every worker refused its stage for memory (MEMORY_SHORT): ${refusals}; add a worker with more memory, or lower the KV budget`,
      );
    return choosePlan(this.options.model, left, planning, undefined);
  }

  /** Remembers the plan deployed for these workers. */
  remember(names: readonly string[], plan: Plan | PlanResult): Promise<void> {
    return this.options.memory.remember(names, this.options.planning(), plan);
  }

  /**
   * Whether a worker that joined while a deployment serves should be taken in, and with
   * which plan: the plan remembered for exactly these workers (the one that served before
   * a loss or a restart); with the even planner, the even split once it covers more
   * workers; otherwise a new plan, adopted when it pays by the ReplanPolicy.
   */
  async decide(
    current: Pick<Deployment, 'plan' | 'candidates'>,
    names: readonly string[],
    reason: string,
  ): Promise<Plan | PlanResult | undefined> {
    // Nothing new since this deployment was planned.
    if (names.join('\n') === current.candidates.join('\n')) return undefined;
    const { given } = this.options;
    if (given && devicesConnected(given, names)) {
      if (samePlan(given, current.plan)) return undefined;
      this.options.log(`${reason}: every device of the given plan is connected: deploying it`);
      return given;
    }
    const planning = this.options.planning();
    const remembered = await this.options.memory.recall(names, planning);
    if (remembered) {
      if (samePlan(remembered, current.plan)) return undefined;
      this.options.log(`${reason}: restoring the plan last deployed on ${names.join(', ')}`);
      return remembered;
    }
    const { manifest } = this.options.model;
    if (!needsProfile(planning)) {
      const even = this.#shortfalls.size
        ? this.#plan(names, planning, undefined)
        : evenPlan(manifest.modelHash, manifest.config.nLayers, names);
      return samePlan(even, current.plan) ? undefined : even;
    }
    const profile = this.#profileOf(names) ?? (await this.options.measure());
    const candidate = this.#plan(names, planning, profile);
    if (samePlan(candidate, current.plan) || !isPlanResult(candidate)) return undefined;
    const gain = predictedGain(
      profile,
      planning.workload,
      planning.objective ?? 'throughput',
      current.plan,
      candidate,
    );
    // The running plan's devices hold its stages' shards; a joining worker holds none yet.
    const stages = current.plan.stages;
    const held = new Set(stages.map((s, k) => stageKey(s, k, stages.length)));
    const verdict = judgeReplan(
      { plan: candidate, gain, redeployMs: redeployMs(profile, candidate, held) },
      this.options.policy,
    );
    this.options.log(`${reason}: ${verdict.why}`);
    return verdict.replan ? candidate : undefined;
  }
}
