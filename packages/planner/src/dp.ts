/**
 * The exact planner: EdgeShard's dynamic program over (layers × devices), extended.
 *
 * A state is (ℓ, c, u): layers [0, ℓ) are placed, c[t] devices of each type t are used
 * (see device-types.ts), and the last stage runs on type u. A transition appends one
 * stage: a device of type v that is still free runs layers [ℓ, e). Devices not used by
 * a finished pipeline do not take part, every device runs at most one contiguous range,
 * and the order of types along the path is the order of devices in the pipeline — so
 * device selection, order and cuts are all chosen by the same search.
 *
 * A state keeps labels, not one number, so the objective is exact:
 * - latency: (TPOT so far, prefill sum, prefill max). TPOT is a sum, so only labels with
 *   the least TPOT survive; among them the Pareto set of (sum, max) keeps the TTFT
 *   tie-break exact (TTFT = sum + (K − 1)·max, see cost-model.ts).
 * - throughput: (TPOT so far, busiest resource so far), Pareto set. The rate with M
 *   micro-batches in flight is b·M / max(M·busiest, TPOT): neither a pure sum nor a
 *   pure max, which is why the pair is kept.
 * Memory limits are checked on every transition. The KV cache a stage holds depends on
 * the micro-batch size b and the micro-batches in flight M, so the search runs once per
 * (b, M) pair — for throughput, b from the candidates and M from 1 to 2·S_max + 1 — and
 * the best run wins. Runs go best-first by an optimistic bound and stop once no run left
 * can beat the best plan found.
 *
 * Beyond the paper: pins on the first and last stage; the micro-batch size and the
 * number in flight chosen with the cut; the exact closed-loop rate instead of the bare
 * bottleneck; a TTFT tie-break; and the symmetry of identical devices.
 *
 * Complexity per run: O(L² · T² · Π(n_t + 1) · F) for L layers, T device types with n_t
 * devices each, and F labels per state (1 for latency in practice, a few for
 * throughput). Identical devices collapse into one type, so 16 Pis cost like one type
 * with 17 counts, while 16 all-different devices cost 2^16 mixes: the state space is
 * exponential in the number of *distinct* devices. Pruning keeps the practical cost far
 * below the bound: the search starts from the best baseline plan as incumbent, a range
 * stops growing once it overflows memory or makes its stage slower than the incumbent,
 * and admissible lower bounds (dp-bounds.ts: a memory-aware fractional knapsack over
 * the devices still free) discard partial pipelines that cannot beat it, and states
 * whose free devices cannot even hold the remaining layers.
 *
 * Measured on a busy 2-core machine, 80 layers, both objectives: 16 devices of 5 kinds
 * (3.4e5 states) 0.2–0.4 s; of 6 kinds (1.1e6) 1.5–4 s; 8 kinds of 2 (4.3e6) 10–15 s;
 * 16 distinct (8.5e7) minutes. Past `dpStateLimit` (default 6e5, about a second) the DP
 * refuses with PlanTooLargeError and `auto` uses the GA, which is not exact but was
 * within a few percent on the clusters we measured (see the heuristics test).
 */
import { PlanTooLargeError, SwarmBeeError } from '@swarmbee/core';
import type { CostModel } from './cost-model.js';
import { type DeviceType, groupDeviceTypes } from './device-types.js';
import { DpSearch, type RunBest, type RunSpec, type TypeRules } from './dp-search.js';
import { LabelPool } from './labels.js';
import { batchRuns, compareCandidates, compareEvaluations } from './objective.js';
import type { Evaluation, StageAssignment } from './plan-evaluation.js';
import { seedGenomes } from './search-seeds.js';
import { decode } from './search-space.js';
import type { Objective } from './types.js';
import { NS_PER_S } from './units.js';

/** Default largest state space the DP accepts. */
export const DEFAULT_DP_STATE_LIMIT = 600_000;

export interface DpOptions {
  /** Device indices. */
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  /** Fixed micro-batches in flight; undefined lets throughput choose (see inFlightChoices), latency uses 1. */
  microBatchesInFlight?: number;
  stateLimit?: number;
}

export interface DpResult {
  evaluation: Evaluation;
  /** Labels created over all runs: the work the search did. */
  labels: number;
}

/** Relative slack when turning another run's rate into a cycle bound (float division). */
const CROSS_RUN_SLACK = 1e-9;

function toStages(types: readonly DeviceType[], best: RunBest): StageAssignment[] {
  const used = types.map(() => 0);
  return best.pool.stages(best.id).map(({ type, start, end }) => ({
    device: types[type]!.members[used[type]!++]!,
    layerStart: start,
    layerEnd: end,
  }));
}

function runsFor(cost: CostModel, objective: Objective, options: DpOptions): RunSpec[] {
  return batchRuns(cost, objective, options.microBatchCandidates, options.microBatchesInFlight);
}

/** True when the devices together cannot hold the model at this run's KV budget. */
function cannotFit(cost: CostModel, run: RunSpec, totalMemory: number): boolean {
  return cost.stageMemoryBytes(0, cost.nLayers, true, true, run.batch * run.inFlight) > totalMemory;
}

/** The best plan the baselines' encodings give: the incumbent the search must beat. */
function heuristicIncumbent(
  cost: CostModel,
  objective: Objective,
  options: DpOptions,
): Evaluation | undefined {
  const space = { cost, objective, ...options };
  // Only a plan the DP's own runs could find may prune them (the workload's streams fix the
  // micro-batch size for each count in flight).
  const allowed = new Set(runsFor(cost, objective, options).map((r) => `${r.batch}x${r.inFlight}`));
  let best: Evaluation | undefined;
  for (const genome of seedGenomes(space)) {
    const e = decode(space, genome);
    if (!allowed.has(`${e.microBatchSize}x${e.microBatchesInFlight}`)) continue;
    if (e.feasible && (!best || compareCandidates(objective, e, best) < 0)) best = e;
  }
  return best;
}

/** Device types for the DP, with pinned devices alone in theirs. */
export function dpTypes(cost: CostModel, pinFirst?: number, pinLast?: number): DeviceType[] {
  const alone = new Set<number>();
  if (pinFirst !== undefined) alone.add(pinFirst);
  if (pinLast !== undefined) alone.add(pinLast);
  return groupDeviceTypes(cost, alone);
}

/** Size of the DP's state space for a grouping: (L + 1) · Π(n_t + 1) · T. */
export function dpStateCount(nLayers: number, types: readonly DeviceType[]): number {
  return types.reduce((n, t) => n * (t.members.length + 1), (nLayers + 1) * types.length);
}

/** The optimal plan under the cost model, or undefined when no plan fits. */
export function planDp(
  cost: CostModel,
  objective: Objective,
  options: DpOptions,
): DpResult | undefined {
  const types = dpTypes(cost, options.pinFirst, options.pinLast);
  const limit = options.stateLimit ?? DEFAULT_DP_STATE_LIMIT;
  const states = dpStateCount(cost.nLayers, types);
  if (states > limit) {
    throw new PlanTooLargeError(
      `the exact planner would track ${states.toExponential(1)} states for ${cost.devices.length} devices of ` +
        `${types.length} distinct kinds (limit ${limit.toExponential(1)}); use planner "ga" or "pso", ` +
        'or raise dpStateLimit',
    );
  }
  const typeOf = (device: number | undefined) =>
    device === undefined ? -1 : types.findIndex((t) => t.members.includes(device));
  const rules: TypeRules = {
    types,
    pinFirstType: typeOf(options.pinFirst),
    pinLastType: typeOf(options.pinLast),
  };
  const totalMemory = cost.devices.reduce((sum, d) => sum + d.memoryBytes, 0);
  // The incumbent only prunes; the answer always comes from a search, so it is exact.
  const incumbent = heuristicIncumbent(cost, objective, options);
  const pool = new LabelPool();
  // Best-first over runs: the one with the most optimistic bound first, and stop once no
  // remaining run can beat the best plan found.
  const runs = runsFor(cost, objective, options)
    .filter((run) => !cannotFit(cost, run, totalMemory))
    .map((run) => {
      const search = new DpSearch(cost, objective, rules, run, pool);
      const bound = search.startBound();
      const rate = objective === 'latency' ? -bound : (run.batch * run.inFlight * NS_PER_S) / bound;
      return { search, rate };
    })
    .sort((x, y) => y.rate - x.rate);
  let best: Evaluation | undefined;
  let labels = 0;
  for (const { search, rate } of runs) {
    const { run } = search;
    const reference = best ?? incumbent;
    let bound = Number.POSITIVE_INFINITY;
    if (reference && objective === 'latency') bound = reference.tpotNs;
    if (reference && objective === 'throughput') {
      if (rate < reference.tokensPerS * (1 - CROSS_RUN_SLACK)) break;
      // The cycle this run must not exceed to match the reference rate (b·M / cycle).
      bound =
        ((run.batch * run.inFlight * NS_PER_S) / reference.tokensPerS) * (1 + CROSS_RUN_SLACK);
    }
    const found = search.solve(bound);
    labels += pool.size;
    if (!found) continue;
    // Read the plan out now: the next run reuses the pool.
    const evaluation = cost.evaluate(toStages(types, found), run.batch, run.inFlight);
    const agrees =
      evaluation.feasible &&
      evaluation.tpotNs === found.tpotNs &&
      (objective === 'latency' ? evaluation.ttftNs : evaluation.maxOccupancyNs) === found.second;
    if (!agrees) {
      throw new SwarmBeeError(
        `internal: the DP predicted tpot ${found.tpotNs} ns / ${found.second} but the cost model says ` +
          `${evaluation.tpotNs} ns (feasible: ${evaluation.feasible})`,
      );
    }
    if (!best || compareEvaluations(objective, evaluation, best) < 0) best = evaluation;
  }
  return best ? { evaluation: best, labels } : undefined;
}
