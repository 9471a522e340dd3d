/**
 * The hybrid planner: pipelines of stages, each a single device or a tensor-parallel group,
 * found by an exact dynamic program like dp.ts's. A state is (layers placed, type mix used,
 * the last stage's leader type); a transition appends a stage — a sub-mix of the free devices
 * with a leader (parallel-search.ts's `Mixes`) — over layers [ℓ, e). Labels keep what the
 * objective needs (latency: TPOT so far, prefill sum and max; throughput: TPOT so far and the
 * busiest resource), Pareto-pruned as in dp-search.ts, once per (micro-batch size, count in
 * flight). The best plan known (the pipeline DP's) seeds the bound and wins ties, so a plan
 * changes only when a group is predicted strictly better. Every plan it keeps is re-evaluated
 * by the cost model, which must agree with the search's own sums.
 *
 * Work before pruning: runs × L(L + 1)/2 × the (mix used, stage drawn, leader) triples,
 * Σ_t n_t(n_t + 1)/2 · Π_{s≠t} (n_s + 1)(n_s + 2)/2 for n_t devices of type t — 4 equal
 * devices, 12 layers: 1,560 per run; 8 distinct devices, 22 layers: 4.4e6 per run (latency
 * has one run, throughput up to 2·N + 1 counts in flight × the micro-batch candidates). A
 * lower bound on the layers left (each at the least any device or group spends on it) and the
 * incumbent prune most of it; measured here, 8 distinct devices (presets), 22 layers: latency
 * 0.3-0.5 s, throughput 11-13 s (load 2.5-3.5). Past `HYBRID_STEP_LIMIT` stage evaluations
 * the search gives up with PlanTooLargeError (fix the count in flight or give the workload its
 * streams: fewer runs).
 */
import { PlanTooLargeError, SwarmBeeError } from '@swarmbee/core';
import type { CostModel } from './cost-model.js';
import type { BatchRun } from './objective.js';
import {
  allowed,
  assignment,
  better,
  type Mixes,
  type ParallelOptions,
  type ParallelResult,
  setup,
} from './parallel-search.js';
import { type Evaluation, evaluateStage, type StageAssignment } from './plan-evaluation.js';
import type { Objective } from './types.js';
import { NS_PER_S } from './units.js';

/**
 * Most stage evaluations one hybrid search may make before it gives up (PlanTooLargeError):
 * about 13 s on this busy 2-core machine. 8 distinct devices, 22 layers took 0.3 M
 * (latency) and 4.5 M (throughput, 85 runs).
 */
export const HYBRID_STEP_LIMIT = 5e6;

interface Label {
  /** TPOT so far. */
  a: number;
  /** Latency: prefill sum so far; throughput: the busiest resource so far. */
  b: number;
  /** Latency: the longest prefill step so far. */
  c: number;
  prev: Label | null;
  stage: StageAssignment | null;
}

function chain(label: Label, last: StageAssignment): StageAssignment[] {
  const stages = [last];
  for (let x: Label | null = label; x?.stage; x = x.prev) stages.unshift(x.stage);
  return stages;
}

/** Keeps `label` in `list` unless another dominates it; drops those it dominates. */
function insert(list: Label[], label: Label, latency: boolean): void {
  if (latency && list.length > 0) {
    if (label.a > list[0]!.a) return;
    if (label.a < list[0]!.a) list.length = 0;
  }
  const covers = (x: Label, y: Label) =>
    latency ? x.b <= y.b && x.c <= y.c : x.a <= y.a && x.b <= y.b;
  if (list.some((x) => covers(x, label))) return;
  let keep = 0;
  for (const x of list) if (!covers(label, x)) list[keep++] = x;
  list.length = keep;
  list.push(label);
}

class HybridRun {
  private readonly latency: boolean;
  private bestTpot = Number.POSITIVE_INFINITY;
  private limit = Number.POSITIVE_INFINITY;
  /** Lower bound on the decode time of layers [ℓ, L), by ℓ. */
  private rest: Float64Array = new Float64Array(0);
  steps = 0;

  constructor(
    private readonly cost: CostModel,
    private readonly objective: Objective,
    private readonly mixes: Mixes,
    private readonly run: BatchRun,
    public best: Evaluation | undefined,
    /** Stage evaluations this run may still make, of the search's `limitSteps`. */
    private readonly budget: number,
    private readonly limitSteps: number,
  ) {
    this.latency = objective === 'latency';
    if (best && this.latency) this.bestTpot = best.tpotNs;
    if (best && !this.latency)
      this.limit = ((run.batch * run.inFlight * NS_PER_S) / best.tokensPerS) * (1 + 1e-9);
  }

  solve(): void {
    const L = this.cost.nLayers;
    this.rest = this.remainingBound();
    // levels[ℓ]: by type mix used, by the last stage's leader type, the labels kept.
    const levels = Array.from({ length: L + 1 }, () => new Map<number, Map<number, Label[]>>());
    const root = new Map([[-1, [{ a: 0, b: 0, c: 0, prev: null, stage: null }]]]);
    this.expand(0, 0, root, levels);
    for (let l = 1; l < L; l++) {
      for (const [c, byLeader] of levels[l]!) this.expand(l, c, byLeader, levels);
      levels[l]!.clear();
    }
  }

  /**
   * Lower bound on the decode time of layers [ℓ, L), by ℓ: each layer at the least any
   * stage of this run could spend on it (every device alone, every group).
   */
  private remainingBound(): Float64Array {
    const { cost } = this;
    const L = cost.nLayers;
    const least = new Float64Array(L).fill(Number.POSITIVE_INFINITY);
    for (const choice of this.mixes.choices(0)) {
      const group = choice.devices;
      if (group.length > 1 && !cost.groups.split(group)) continue;
      const p =
        group.length > 1
          ? cost.groups.decodePrefixNs(group, this.run.batch)
          : cost.decodePrefixNs(group[0]!, this.run.batch);
      for (let l = 0; l < L; l++) least[l] = Math.min(least[l]!, p[l + 1]! - p[l]!);
    }
    const rest: Float64Array = new Float64Array(L + 1);
    for (let l = L - 1; l >= 0; l--) rest[l] = rest[l + 1]! + least[l]!;
    return rest;
  }

  private expand(
    l: number,
    c: number,
    byLeader: Map<number, Label[]>,
    levels: Map<number, Map<number, Label[]>>[],
  ): void {
    const { cost, mixes, latency } = this;
    const L = cost.nLayers;
    const { batch, inFlight: M } = this.run;
    const first = l === 0;
    let minA = Number.POSITIVE_INFINITY;
    for (const labels of byLeader.values()) for (const x of labels) minA = Math.min(minA, x.a);
    const bound = latency ? this.bestTpot : this.limit;
    if (minA + this.rest[l]! > bound) return;
    for (const choice of mixes.choices(c)) {
      if (!allowed(mixes, choice, first, false) && !allowed(mixes, choice, first, true)) continue;
      if (choice.devices.length > 1 && !cost.groups.split(choice.devices)) continue;
      const next = c + choice.delta;
      for (let e = l + 1; e <= L; e++) {
        const last = e === L;
        if (!allowed(mixes, choice, first, last)) continue;
        const stage = assignment(choice, l, e);
        if (++this.steps > this.budget) throw tooLarge(cost, mixes, this.limitSteps);
        const ev = evaluateStage(cost, stage, first, last, batch, batch * M);
        const held = ev.memberMemoryBytes ?? [ev.memoryBytes];
        // Memory and time only grow with e: past the first miss, longer ranges miss too.
        if (choice.devices.some((d, rank) => held[rank]! > cost.devices[d]!.memoryBytes)) break;
        if (latency ? minA + ev.decodeNs > this.bestTpot : M * ev.decodeNs > this.limit) break;
        if (minA + ev.decodeNs + this.rest[e]! > (latency ? this.bestTpot : this.limit)) continue;
        for (const labels of byLeader.values())
          for (const label of labels)
            this.extend(label, stage, ev, first, last, next, choice.leaderType, levels);
      }
    }
  }

  private extend(
    label: Label,
    stage: StageAssignment,
    ev: { decodeNs: number; prefillNs: number },
    first: boolean,
    last: boolean,
    mix: number,
    leaderType: number,
    levels: Map<number, Map<number, Label[]>>[],
  ): void {
    const { cost, latency } = this;
    const { batch, inFlight: M } = this.run;
    const coord = cost.coordinator;
    const v = stage.device;
    const from = label.stage ? label.stage.device : coord;
    const chunk = cost.prefillChunkLength;
    const lat = cost.latencyNs(from, v);
    const occ = first
      ? cost.occupancyNs(from, v, cost.tokenFrameBytes(batch)) + cost.coordinatorStepNs(batch)
      : cost.occupancyNs(from, v, cost.activationFrameBytes(batch));
    const a = label.a + lat + occ + ev.decodeNs;
    let b: number;
    let c = 0;
    if (latency) {
      const prefillOcc = first
        ? cost.occupancyNs(from, v, cost.tokenFrameBytes(chunk)) + cost.coordinatorStepNs(1)
        : cost.occupancyNs(from, v, cost.activationFrameBytes(chunk));
      b = label.b + lat + prefillOcc + ev.prefillNs;
      c = Math.max(label.c, prefillOcc, ev.prefillNs);
      if (a + this.rest[stage.layerEnd]! > this.bestTpot) return;
    } else {
      b = Math.max(label.b, occ, ev.decodeNs);
      if (a + this.rest[stage.layerEnd]! > this.limit || M * b > this.limit) return;
    }
    if (!last) {
      const level = levels[stage.layerEnd]!;
      const byLeader = level.get(mix) ?? new Map<number, Label[]>();
      level.set(mix, byLeader);
      const list = byLeader.get(leaderType) ?? [];
      byLeader.set(leaderType, list);
      insert(list, { a, b, c, prev: label, stage }, latency);
      return;
    }
    const outOcc = cost.occupancyNs(v, coord, cost.tokenFrameBytes(batch));
    const tpot = a + cost.latencyNs(v, coord) + outOcc;
    if (latency ? tpot > this.bestTpot : Math.max(M * Math.max(b, outOcc), tpot) > this.limit)
      return;
    const e = cost.evaluate(chain(label, stage), batch, M);
    if (e.tpotNs !== tpot)
      throw new SwarmBeeError(
        `internal: the hybrid search summed tpot ${tpot} ns but the cost model says ${e.tpotNs} ns`,
      );
    if (!better(this.objective, e, this.best)) return;
    this.best = e;
    if (latency) this.bestTpot = e.tpotNs;
    else this.limit = e.cycleNs;
  }
}

function tooLarge(cost: CostModel, mixes: Mixes, limit: number): PlanTooLargeError {
  return new PlanTooLargeError(
    `the hybrid planner gave up after ${limit.toExponential(1)} stage evaluations for ` +
      `${cost.devices.length} devices of ${mixes.T} distinct kinds; plan with parallelism ` +
      '"pipeline" or "tensor", fix microBatchesInFlight, or give the workload its streams',
  );
}

/**
 * The best plan of stages that are single devices or groups; `incumbent` when nothing beats
 * it. @throws PlanTooLargeError past {@link HYBRID_STEP_LIMIT} stage evaluations
 */
export function planHybrid(
  cost: CostModel,
  objective: Objective,
  options: ParallelOptions,
): ParallelResult {
  const { mixes, runs } = setup(cost, objective, options);
  const limit = options.stepLimit ?? HYBRID_STEP_LIMIT;
  let best = options.incumbent?.feasible ? options.incumbent : undefined;
  let steps = 0;
  for (const run of runs) {
    const search = new HybridRun(cost, objective, mixes, run, best, limit - steps, limit);
    search.solve();
    best = search.best;
    steps += search.steps;
  }
  return { evaluation: best, steps };
}
