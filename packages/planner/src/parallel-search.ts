/**
 * Plans whose stages may be tensor-parallel groups (group-cost.ts prices them).
 *
 * - `tensor`: one stage holding every layer, run by the best group of 2 or more devices.
 *   Every group is tried: a group is a mix of device types (identical devices are
 *   interchangeable, device-types.ts) and the type of its leader, so 4 equal devices are 3
 *   groups, 8 distinct ones 1,013 (subsets × leaders).
 * - `hybrid`: pipelines whose stages may be groups (hybrid-search.ts).
 */
import type { CostModel } from './cost-model.js';
import type { DeviceType } from './device-types.js';
import { dpTypes } from './dp.js';
import { type BatchRun, batchRuns, compareEvaluations } from './objective.js';
import type { Evaluation, StageAssignment } from './plan-evaluation.js';
import type { Objective } from './types.js';

/** Which plans the planner may make: pipelines of single devices, one group, or both mixed. */
export type Parallelism = 'pipeline' | 'tensor' | 'hybrid';
export const PARALLELISMS: readonly Parallelism[] = ['pipeline', 'tensor', 'hybrid'];

export interface ParallelOptions {
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  microBatchesInFlight?: number;
  /** A plan already known (the pipeline DP's): prunes the search and wins ties. */
  incumbent?: Evaluation;
  /** Hybrid: most stage evaluations before PlanTooLargeError. Default HYBRID_STEP_LIMIT. */
  stepLimit?: number;
}

export interface ParallelResult {
  evaluation: Evaluation | undefined;
  /** Stages the search evaluated: the work it did. */
  steps: number;
}

/** A stage's devices drawn from the free ones: its type mix (as an index delta) and devices by rank. */
export interface Choice {
  delta: number;
  leaderType: number;
  devices: number[];
  /** The mix holds a pinned type (which only its leader may be). */
  pinnedFirst: boolean;
  pinnedLast: boolean;
}

export class Mixes {
  readonly T: number;
  readonly radix: number[] = [];
  readonly C: number;
  private readonly cache = new Map<number, Choice[]>();

  constructor(
    readonly types: readonly DeviceType[],
    private readonly maxDegree: number,
    /** Types that must lead the first / the last stage; -1 for none. */
    readonly pinFirstType: number,
    readonly pinLastType: number,
  ) {
    this.T = types.length;
    let C = 1;
    for (const t of types) {
      this.radix.push(C);
      C *= t.members.length + 1;
    }
    this.C = C;
  }

  used(c: number, t: number): number {
    return Math.floor(c / this.radix[t]!) % (this.types[t]!.members.length + 1);
  }

  /** Every stage that fits the devices free in mix `c`: single devices and groups. */
  choices(c: number): Choice[] {
    let list = this.cache.get(c);
    if (list) return list;
    list = [];
    const free = this.types.map((t, i) => t.members.length - this.used(c, i));
    const d = new Array<number>(this.T).fill(0);
    const walk = (t: number, size: number) => {
      if (t === this.T) {
        if (size === 0 || (size > 1 && size > this.maxDegree)) return;
        for (let v = 0; v < this.T; v++) if (d[v]! > 0) list!.push(this.choice(c, d, v));
        return;
      }
      for (let n = 0; n <= free[t]!; n++) {
        d[t] = n;
        walk(t + 1, size + n);
      }
      d[t] = 0;
    };
    walk(0, 0);
    this.cache.set(c, list);
    return list;
  }

  private choice(c: number, d: readonly number[], v: number): Choice {
    const devices: number[] = [];
    let delta = 0;
    const take = (t: number) => {
      const start = this.used(c, t);
      for (let i = 0; i < d[t]!; i++) devices.push(this.types[t]!.members[start + i]!);
    };
    take(v);
    for (let t = 0; t < this.T; t++) {
      delta += d[t]! * this.radix[t]!;
      if (t !== v) take(t);
    }
    return {
      delta,
      leaderType: v,
      devices,
      pinnedFirst: this.pinFirstType >= 0 && d[this.pinFirstType]! > 0,
      pinnedLast: this.pinLastType >= 0 && d[this.pinLastType]! > 0,
    };
  }
}

export function assignment(choice: Choice, layerStart: number, layerEnd: number): StageAssignment {
  const device = choice.devices[0]!;
  return choice.devices.length === 1
    ? { device, layerStart, layerEnd }
    : { device, layerStart, layerEnd, group: choice.devices };
}

/** The type mixes the search draws stages from, and the micro-batch runs it judges them at. */
export function setup(
  cost: CostModel,
  objective: Objective,
  options: ParallelOptions,
): { mixes: Mixes; runs: BatchRun[] } {
  const types = dpTypes(cost, options.pinFirst, options.pinLast);
  const typeOf = (device: number | undefined) =>
    device === undefined ? -1 : types.findIndex((t) => t.members.includes(device));
  const mixes = new Mixes(
    types,
    cost.groups.maxDegree,
    typeOf(options.pinFirst),
    typeOf(options.pinLast),
  );
  const { microBatchCandidates, microBatchesInFlight } = options;
  return { mixes, runs: batchRuns(cost, objective, microBatchCandidates, microBatchesInFlight) };
}

/** Whether a stage drawn as `choice` may stand first / last: pinned devices lead their stage. */
export function allowed(mixes: Mixes, choice: Choice, first: boolean, last: boolean): boolean {
  const v = choice.leaderType;
  const { pinFirstType, pinLastType } = mixes;
  if (choice.pinnedFirst && !(first && v === pinFirstType)) return false;
  if (first && pinFirstType >= 0 && v !== pinFirstType) return false;
  if (choice.pinnedLast && !(last && v === pinLastType)) return false;
  if (last && pinLastType >= 0 && v !== pinLastType) return false;
  return true;
}

export function better(objective: Objective, e: Evaluation, best: Evaluation | undefined): boolean {
  return e.feasible && (!best || compareEvaluations(objective, e, best) < 0);
}

/** The best single stage of every layer on a group of 2 or more devices. */
export function planTensor(
  cost: CostModel,
  objective: Objective,
  options: ParallelOptions,
): ParallelResult {
  const { mixes, runs } = setup(cost, objective, options);
  let best: Evaluation | undefined;
  let steps = 0;
  for (const choice of mixes.choices(0)) {
    if (choice.devices.length < 2 || !allowed(mixes, choice, true, true)) continue;
    if (!cost.groups.split(choice.devices)) continue;
    const stages = [assignment(choice, 0, cost.nLayers)];
    for (const run of runs) {
      steps++;
      const e = cost.evaluate(stages, run.batch, run.inFlight);
      if (better(objective, e, best)) best = e;
    }
  }
  return { evaluation: best, steps };
}
