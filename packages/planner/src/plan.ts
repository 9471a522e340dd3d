/** The planner's entry points: one plan, or every planner side by side. */
import {
  asSwarmBeeError,
  InvalidArgumentError,
  PlanInfeasibleError,
  PlanTooLargeError,
  SwarmBeeError,
  type WireError,
} from '@swarmbee/core';
import { type BaselineOptions, planEven, planMemoryShare, planSolo } from './baselines.js';
import { CostModel } from './cost-model.js';
import { DEFAULT_DP_STATE_LIMIT, dpStateCount, dpTypes, planDp } from './dp.js';
import { checkFeasible, noPlanError } from './feasibility.js';
import { planGa } from './ga.js';
import { planHybrid } from './hybrid-search.js';
import { PARALLELISMS, type Parallelism, planTensor } from './parallel-search.js';
import type { Evaluation } from './plan-evaluation.js';
import { planPso } from './pso.js';
import { toPlanResult } from './result.js';
import type { Objective, PlannerName, PlanOptions, PlanRequest, PlanResult } from './types.js';

export const DEFAULT_MICRO_BATCH_CANDIDATES: readonly number[] = [1, 2, 4, 8, 16];
export const DEFAULT_OBJECTIVE: Objective = 'throughput';
export const DEFAULT_SEARCH_EVALUATIONS = 12_000;
export const DEFAULT_SEED = 1;

const PLANNERS: readonly PlannerName[] = ['dp', 'ga', 'pso', 'solo', 'even', 'memory', 'auto'];

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`);
  }
  return value;
}

interface Resolved extends BaselineOptions {
  planner: PlannerName;
  parallelism: Parallelism;
  objective: Objective;
  seed: number;
  searchEvaluations: number;
  dpStateLimit: number;
}

function resolveOptions(cost: CostModel, options: PlanOptions): Resolved {
  const planner = options.planner ?? 'dp';
  if (!PLANNERS.includes(planner)) {
    throw new InvalidArgumentError(`unknown planner "${planner}"; one of ${PLANNERS.join(', ')}`);
  }
  const objective = options.objective ?? DEFAULT_OBJECTIVE;
  if (objective !== 'latency' && objective !== 'throughput') {
    throw new InvalidArgumentError(
      `objective must be "latency" or "throughput", got "${objective}"`,
    );
  }
  const parallelism = options.parallelism ?? 'pipeline';
  if (!PARALLELISMS.includes(parallelism))
    throw new InvalidArgumentError(
      `unknown parallelism "${parallelism}"; one of ${PARALLELISMS.join(', ')}`,
    );
  if (parallelism !== 'pipeline' && planner !== 'dp' && planner !== 'auto')
    throw new InvalidArgumentError(
      `parallelism "${parallelism}" needs the dp (or auto) planner, not "${planner}"`,
    );
  const candidates = options.microBatchCandidates ?? DEFAULT_MICRO_BATCH_CANDIDATES;
  if (candidates.length === 0) throw new InvalidArgumentError('microBatchCandidates is empty');
  for (const b of candidates) positiveInteger(b, 'a micro-batch candidate');
  const resolved: Resolved = {
    planner,
    parallelism,
    objective,
    microBatchCandidates: [...new Set(candidates)].sort((x, y) => x - y),
    seed: options.seed ?? DEFAULT_SEED,
    searchEvaluations: positiveInteger(
      options.searchEvaluations ?? DEFAULT_SEARCH_EVALUATIONS,
      'searchEvaluations',
    ),
    dpStateLimit: options.dpStateLimit ?? DEFAULT_DP_STATE_LIMIT,
  };
  if (options.microBatchesInFlight !== undefined) {
    resolved.microBatchesInFlight = positiveInteger(
      options.microBatchesInFlight,
      'microBatchesInFlight',
    );
  }
  if (options.pinFirst !== undefined) resolved.pinFirst = cost.deviceIndex(options.pinFirst);
  if (options.pinLast !== undefined) resolved.pinLast = cost.deviceIndex(options.pinLast);
  return resolved;
}

function minSequences(o: Resolved): number {
  const batch = o.objective === 'latency' ? 1 : o.microBatchCandidates[0]!;
  return batch * (o.microBatchesInFlight ?? 1);
}

function run(
  cost: CostModel,
  o: Resolved,
): { evaluation: Evaluation | undefined; planner: Exclude<PlannerName, 'auto'>; steps: number } {
  let planner = o.planner;
  if (planner === 'auto') {
    const states = dpStateCount(cost.nLayers, dpTypes(cost, o.pinFirst, o.pinLast));
    planner = states <= o.dpStateLimit || o.parallelism !== 'pipeline' ? 'dp' : 'ga';
  }
  if (planner === 'dp' && o.parallelism !== 'pipeline') return runParallel(cost, o);
  const space = { cost, ...o };
  switch (planner) {
    case 'dp': {
      const found = planDp(cost, o.objective, { ...o, stateLimit: o.dpStateLimit });
      return { evaluation: found?.evaluation, planner, steps: found?.labels ?? 0 };
    }
    case 'ga':
    case 'pso': {
      const search = planner === 'ga' ? planGa : planPso;
      const found = search(space, { seed: o.seed, evaluations: o.searchEvaluations });
      return { evaluation: found.best, planner, steps: found.evaluations };
    }
    case 'solo':
      return { evaluation: planSolo(cost, o.objective, o), planner, steps: cost.devices.length };
    case 'even':
      return { evaluation: planEven(cost, o.objective, o), planner, steps: 1 };
    case 'memory':
      return { evaluation: planMemoryShare(cost, o.objective, o), planner, steps: 1 };
  }
}

/** `tensor`: the best group; `hybrid`: the pipeline DP's plan, then stages that may be groups. */
function runParallel(
  cost: CostModel,
  o: Resolved,
): { evaluation: Evaluation | undefined; planner: 'dp'; steps: number } {
  if (cost.groups.maxDegree < 2 && o.parallelism === 'tensor')
    throw new InvalidArgumentError(
      `${cost.model.name} cannot be split across a tensor-parallel group (no tensor shape, ` +
        `fewer than 2 KV heads, or a float16 KV cache)`,
    );
  if (o.parallelism === 'tensor') {
    const found = planTensor(cost, o.objective, o);
    if (!found.evaluation)
      throw new PlanInfeasibleError(
        `no tensor-parallel group of 2 to ${cost.groups.maxDegree} of the ${cost.devices.length} ` +
          'devices holds the whole model' +
          (o.pinFirst !== undefined && o.pinLast !== undefined && o.pinFirst !== o.pinLast
            ? ' (and one stage cannot be led by two pinned devices)'
            : ''),
      );
    return { evaluation: found.evaluation, planner: 'dp', steps: found.steps };
  }
  let incumbent: Evaluation | undefined;
  let steps = 0;
  try {
    const pipeline = planDp(cost, o.objective, { ...o, stateLimit: o.dpStateLimit });
    incumbent = pipeline?.evaluation;
    steps += pipeline?.labels ?? 0;
  } catch (error) {
    // Too many kinds of device for the pipeline DP: the hybrid search decides alone (or refuses).
    if (!(error instanceof PlanTooLargeError)) throw error;
  }
  const found = planHybrid(cost, o.objective, { ...o, incumbent });
  return { evaluation: found.evaluation, planner: 'dp', steps: steps + found.steps };
}

/** What is wrong with a plan's shape (pins, one range per device, every layer once), if anything. */
export function planDefect(
  cost: CostModel,
  e: Evaluation,
  pinFirst?: number,
  pinLast?: number,
): string | undefined {
  const seen = new Set<number>();
  let next = 0;
  for (const s of e.stages) {
    if (s.group && s.group[0] !== s.device) return 'a group is not led by its stage device';
    for (const d of s.group ?? [s.device]) {
      if (seen.has(d)) return `device ${cost.devices[d]!.name} runs two stages`;
      seen.add(d);
    }
    if (s.layerStart !== next || s.layerEnd <= s.layerStart) return `layer ranges break at ${next}`;
    next = s.layerEnd;
  }
  if (next !== cost.nLayers) return `only ${next} of ${cost.nLayers} layers placed`;
  if (pinFirst !== undefined && e.stages[0]?.device !== pinFirst)
    return 'stage 0 is not on the pinned device';
  if (pinLast !== undefined && e.stages[e.stages.length - 1]?.device !== pinLast) {
    return 'the last stage is not on the pinned device';
  }
  return undefined;
}

function planWith(cost: CostModel, o: Resolved): PlanResult {
  checkFeasible(cost, {
    pinFirst: o.pinFirst,
    pinLast: o.pinLast,
    minSequences: minSequences(o),
    pipelineOnly: o.parallelism === 'pipeline',
  });
  const { evaluation, planner, steps } = run(cost, o);
  // Whatever a planner claims, only a plan the cost model verifies leaves here.
  if (!evaluation?.feasible) throw noPlanError(cost, planner, evaluation);
  const defect = planDefect(cost, evaluation, o.pinFirst, o.pinLast);
  if (defect)
    throw new SwarmBeeError(`internal: planner ${planner} returned a broken plan: ${defect}`);
  return toPlanResult(cost, evaluation, planner, o.objective, steps, o.parallelism);
}

/**
 * Plans a pipeline for the cluster: which devices take part, in which order, which
 * layers each runs, and the micro-batch size, with predicted TTFT, TPOT and tokens/s.
 *
 * @throws PlanInfeasibleError when no plan fits (the message says what is short, by how much)
 * @throws DeviceUnknownError when a pinned device is not in the cluster
 * @throws PlanTooLargeError when `dp` would take too long (use `ga`, `pso` or `auto`)
 * @throws ProfileInvalidError, InvalidArgumentError, ContextOverflowError on bad input
 */
export function plan(request: PlanRequest, options: PlanOptions = {}): PlanResult {
  const cost = new CostModel(request.cluster, request.workload, options.tensorCosts);
  return planWith(cost, resolveOptions(cost, options));
}

/** One plan of a side-by-side comparison, or why there is none. */
interface Compared {
  /** The plan, when one was found. */
  result?: PlanResult;
  /** Why not (a coded error), e.g. an even split that overflows a small device. */
  error?: WireError;
  /** Wall-clock planning time in ms. */
  elapsedMs: number;
}

export interface PlannerComparison extends Compared {
  planner: Exclude<PlannerName, 'auto'>;
}

/** The planners `comparePlanners` runs by default, exact first, baselines last. */
export const COMPARED_PLANNERS: readonly Exclude<PlannerName, 'auto'>[] = [
  'dp',
  'ga',
  'pso',
  'solo',
  'even',
  'memory',
];

/** A plan, or the coded error that stopped it, and how long it took. */
function attempt(make: () => PlanResult): Compared {
  const started = performance.now();
  try {
    const result = make();
    return { result, elapsedMs: performance.now() - started };
  } catch (error) {
    if (!(error instanceof SwarmBeeError)) throw error;
    return { error: asSwarmBeeError(error).toWire(), elapsedMs: performance.now() - started };
  }
}

/** Runs every planner on the same request and cost model, for side-by-side tables. */
export function comparePlanners(
  request: PlanRequest,
  options: Omit<PlanOptions, 'planner'> = {},
  planners: readonly Exclude<PlannerName, 'auto'>[] = COMPARED_PLANNERS,
): PlannerComparison[] {
  return compareEach(request, options, planners, (base, planner) => ({ ...base, planner })).map(
    ({ value, ...compared }) => ({ planner: value, ...compared }),
  );
}

/** Plans the request once per value, each varying the same resolved options on one cost model. */
function compareEach<T>(
  request: PlanRequest,
  options: PlanOptions,
  values: readonly T[],
  vary: (base: Resolved, value: T) => Resolved,
): (Compared & { value: T })[] {
  const cost = new CostModel(request.cluster, request.workload, options.tensorCosts);
  const base = resolveOptions(cost, options);
  return values.map((value) => ({ value, ...attempt(() => planWith(cost, vary(base, value))) }));
}

export interface ParallelismComparison extends Compared {
  parallelism: Parallelism;
}

/**
 * Plans the request as pure pipeline, pure tensor and hybrid (planner `dp` or `auto`) on the
 * same cost model, for side-by-side tables: what each predicts, and where a group pays.
 */
export function compareParallelism(
  request: PlanRequest,
  options: Omit<PlanOptions, 'parallelism'> = {},
): ParallelismComparison[] {
  const vary = (base: Resolved, parallelism: Parallelism) => ({ ...base, parallelism });
  return compareEach(request, options, PARALLELISMS, vary).map(({ value, ...compared }) => ({
    parallelism: value,
    ...compared,
  }));
}
