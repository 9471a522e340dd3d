/**
 * The swarm search over deployments: which layers to drop, which precision each layer
 * keeps, and — through the planner's exact DP as the inner step (`auto`: the GA where
 * the DP would be too large) — which devices run which layers. The outer GA, PSO or
 * hybrid picks pruning and precisions; every configuration it proposes is turned into
 * the cluster profile of that model (config.ts) and planned. A configuration counts only
 * if its predicted fidelity is within the budget and the planner finds a plan that fits
 * memory, so nothing returned ever violates either.
 */
import {
  type ClusterProfile,
  InvalidArgumentError,
  SwarmBeeError,
  type WireError,
} from '@swarmbee/core';
import { plan } from '../plan.js';
import type { Objective, PlanOptions, PlanResult, Workload } from '../types.js';
import {
  configKey,
  type DeploymentConfig,
  deploymentCluster,
  describeConfig,
  type FidelityTable,
  type LayerChoice,
  type PrecisionCosts,
  type PredictedFidelity,
  predictFidelity,
} from './config.js';
import {
  type Fitness,
  SWARM_ALGORITHMS,
  SWARM_RUNNERS,
  type SwarmAlgorithm,
  type SwarmProblem,
} from './swarm.js';

export interface DeploymentSearchRequest {
  /** Profile measured (or estimated) for the fp32 model. */
  cluster: ClusterProfile;
  workload?: Partial<Workload>;
  /** Per-layer fidelity contributions measured on a corpus. */
  fidelity: FidelityTable;
  /** Bytes and time factors of the quantized precisions. */
  costs: PrecisionCosts;
}

export interface DeploymentSearchOptions {
  /** Default `latency`: the least time per output token. */
  objective?: Objective;
  /** Largest predicted mean KL divergence from the fp32 model, nats per token. Required. */
  klBudget: number;
  /** Smallest predicted top-1 agreement with the fp32 model, 0..1. Default 0 (no floor). */
  minTop1?: number;
  /** What a layer may become. Default: fp32, and each precision and `drop` the fidelity table covers. */
  choices?: readonly LayerChoice[];
  /** Most layers dropped. Default: a quarter of the layers, rounded down. */
  maxDropped?: number;
  /** Seed of every search's random stream. Default 1. */
  seed?: number;
  /** Fitness evaluations per algorithm (each one a DP plan unless seen before). Default 600. */
  evaluations?: number;
  /** Default all three: ga, pso, hybrid. */
  algorithms?: readonly SwarmAlgorithm[];
  /** Passed to every inner plan (pins, micro-batch candidates). */
  plan?: Pick<PlanOptions, 'pinFirst' | 'pinLast' | 'microBatchCandidates'>;
}

export const DEFAULT_SEARCH_EVALUATIONS_PER_ALGORITHM = 600;

export interface DeploymentCandidate {
  config: LayerChoice[];
  /** Compact key, e.g. `884-4` (see configKey). */
  key: string;
  description: string;
  fidelity: PredictedFidelity;
  plan: PlanResult;
  /** Weight bytes of the configured model's layers. */
  layerBytes: number;
}

export interface DeploymentRun {
  algorithm: SwarmAlgorithm;
  /** Best configuration found within the budget that fits; absent when none was. */
  best?: DeploymentCandidate;
  evaluations: number;
  /** Distinct configurations planned. */
  planned: number;
  elapsedMs: number;
}

export interface DeploymentSearchResult {
  objective: Objective;
  klBudget: number;
  minTop1: number;
  /** Every layer fp32, nothing dropped, planned by the DP; absent when it does not fit. */
  baseline?: DeploymentCandidate;
  baselineError?: WireError;
  runs: DeploymentRun[];
}

interface Resolved {
  objective: Objective;
  klBudget: number;
  minTop1: number;
  choices: LayerChoice[];
  maxDropped: number;
  seed: number;
  evaluations: number;
  algorithms: readonly SwarmAlgorithm[];
  plan: DeploymentSearchOptions['plan'];
}

function resolve(request: DeploymentSearchRequest, options: DeploymentSearchOptions): Resolved {
  const n = request.cluster.model.nLayers;
  const { fidelity } = request;
  const available: LayerChoice[] = ['fp32'];
  for (const p of ['int8', 'int4'] as const) {
    if (fidelity.quantized[p]?.length === n && request.costs.layerBytes[p]) available.push(p);
  }
  if (fidelity.dropped?.length === n) available.push('drop');
  const choices = [...new Set(options.choices ?? available)];
  for (const c of choices) {
    if (!available.includes(c)) {
      throw new InvalidArgumentError(
        `cannot search over "${c}": the fidelity table or byte sizes do not cover it (available: ${available.join(', ')})`,
      );
    }
  }
  if (!choices.includes('fp32')) choices.unshift('fp32');
  if (!(options.klBudget >= 0))
    throw new InvalidArgumentError(`the KL budget must be a number >= 0, got ${options.klBudget}`);
  const minTop1 = options.minTop1 ?? 0;
  if (!(minTop1 >= 0 && minTop1 <= 1))
    throw new InvalidArgumentError(`the top-1 floor must be in [0, 1], got ${minTop1}`);
  const maxDropped = options.maxDropped ?? Math.floor(n / 4);
  if (!Number.isInteger(maxDropped) || maxDropped < 0 || maxDropped >= n) {
    throw new InvalidArgumentError(
      `max dropped layers must be an integer in [0, ${n - 1}], got ${maxDropped}`,
    );
  }
  const evaluations = options.evaluations ?? DEFAULT_SEARCH_EVALUATIONS_PER_ALGORITHM;
  if (!Number.isSafeInteger(evaluations) || evaluations < 50)
    throw new InvalidArgumentError(`evaluations must be an integer >= 50, got ${evaluations}`);
  return {
    objective: options.objective ?? 'latency',
    klBudget: options.klBudget,
    minTop1,
    choices,
    maxDropped,
    seed: options.seed ?? 1,
    evaluations,
    algorithms: options.algorithms ?? SWARM_ALGORITHMS,
    plan: options.plan,
  };
}

/** Plans one configuration, or says why it cannot be deployed. */
function planConfig(
  request: DeploymentSearchRequest,
  o: Resolved,
  config: DeploymentConfig,
): { candidate?: DeploymentCandidate; error?: WireError; layerBytes: number } {
  const cluster = deploymentCluster(request.cluster, config, request.costs);
  const layerBytes = cluster.model.layers.reduce((sum, l) => sum + l.paramBytes, 0);
  try {
    const result = plan(
      { cluster, workload: request.workload },
      { ...o.plan, planner: 'auto', objective: o.objective, seed: o.seed },
    );
    return {
      layerBytes,
      candidate: {
        config: [...config],
        key: configKey(config),
        description: describeConfig(config),
        fidelity: predictFidelity(request.fidelity, config),
        plan: result,
        layerBytes,
      },
    };
  } catch (error) {
    if (!(error instanceof SwarmBeeError)) throw error;
    return { layerBytes, error: error.toWire() };
  }
}

function score(objective: Objective, p: PlanResult): number[] {
  return objective === 'latency' ? [p.tpotMs, p.ttftMs] : [-p.tokensPerS, p.tpotMs];
}

/** Searches deployments with each algorithm; see the module comment. */
export function searchDeployments(
  request: DeploymentSearchRequest,
  options: DeploymentSearchOptions,
): DeploymentSearchResult {
  const o = resolve(request, options);
  const n = request.cluster.model.nLayers;
  const baselineConfig: LayerChoice[] = Array.from({ length: n }, () => 'fp32');
  const baseline = planConfig(request, o, baselineConfig);
  const result: DeploymentSearchResult = {
    objective: o.objective,
    klBudget: o.klBudget,
    minTop1: o.minTop1,
    runs: [],
  };
  if (baseline.candidate) result.baseline = baseline.candidate;
  if (baseline.error) result.baselineError = baseline.error;

  const dropKl = (layer: number) => request.fidelity.dropped?.[layer]?.kl ?? 0;
  const decode = (genome: Float64Array): LayerChoice[] => {
    const config = Array.from(
      genome,
      (g) => o.choices[Math.min(o.choices.length - 1, Math.floor(g * o.choices.length))]!,
    );
    // Repair: keep the drops that cost least fidelity, up to the limit.
    const drops = config
      .flatMap((c, l) => (c === 'drop' ? [l] : []))
      .sort((a, b) => dropKl(a) - dropKl(b));
    for (const layer of drops.slice(o.maxDropped)) config[layer] = 'fp32';
    return config;
  };
  const gene = (choice: LayerChoice) => (o.choices.indexOf(choice) + 0.5) / o.choices.length;
  const seeds = o.choices
    .filter((c) => c !== 'drop')
    .map((c) => Float64Array.from({ length: n }, () => gene(c)));

  for (const algorithm of o.algorithms) {
    const started = performance.now();
    const seen = new Map<string, { fitness: Fitness; candidate?: DeploymentCandidate }>();
    const problem: SwarmProblem = {
      dimensions: n,
      seeds,
      evaluate: (genome) => {
        const config = decode(genome);
        const key = configKey(config);
        let entry = seen.get(key);
        if (!entry) {
          const fidelity = predictFidelity(request.fidelity, config);
          const excess =
            Math.max(0, fidelity.kl - o.klBudget) / Math.max(o.klBudget, 1e-9) +
            Math.max(0, o.minTop1 - fidelity.top1);
          if (excess > 0) {
            entry = { fitness: { feasible: false, score: [excess, 0] } };
          } else {
            const planned = planConfig(request, o, config);
            entry = planned.candidate
              ? {
                  fitness: { feasible: true, score: score(o.objective, planned.candidate.plan) },
                  candidate: planned.candidate,
                }
              : { fitness: { feasible: false, score: [0, planned.layerBytes] } };
          }
          seen.set(key, entry);
        }
        return entry.fitness;
      },
    };
    const outcome = SWARM_RUNNERS[algorithm](problem, { seed: o.seed, evaluations: o.evaluations });
    const best = seen.get(configKey(decode(outcome.genome)));
    const run: DeploymentRun = {
      algorithm,
      evaluations: outcome.evaluations,
      planned: [...seen.values()].filter((e) => e.fitness.feasible || e.fitness.score[0] === 0)
        .length,
      elapsedMs: performance.now() - started,
    };
    if (outcome.fitness.feasible && best?.candidate) run.best = best.candidate;
    result.runs.push(run);
  }
  return result;
}
