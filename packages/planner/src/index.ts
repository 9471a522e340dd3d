/**
 * @swarmbee/planner — decides which devices run which layers. Pure: no I/O.
 *
 * A cost model predicts, from a cluster profile (measured, or estimated from presets),
 * each stage's compute, each hop's transfer, the time to first token, the time per
 * output token and the pipelined throughput of any plan. An exact dynamic program
 * (after EdgeShard, arXiv 2405.14371) picks the devices, their order, the layer cuts and
 * the micro-batch size for a latency or throughput objective; GA and PSO searches cover
 * clusters too varied for it; baselines show what naive splits would do. A swarm search
 * over deployments (deployment/) adds which layers to drop and which precision each
 * keeps, under a fidelity budget, with the DP picking the partition of each.
 *
 * @example
 * ```ts
 * import { clusterFromPresets, llamaModelSummary, plan, stageRows, TINYLLAMA_1B_CONFIG } from '@swarmbee/planner';
 * const model = llamaModelSummary(TINYLLAMA_1B_CONFIG, 'tinyllama'); // or modelSummaryFromManifest(manifest)
 * const cluster = clusterFromPresets(model, [
 *   { name: 'pi-1', preset: 'rpi4-8gb' },
 *   { name: 'pi-2', preset: 'rpi5-8gb' },
 * ]);
 * const result = plan({ cluster, workload: { contextTokens: 1024 } }, { objective: 'latency' });
 * console.table(stageRows(result));
 * ```
 */

export {
  ALL_REDUCE_PART_OVERHEAD_BYTES,
  type AllReduceAlgorithmName,
  type AllReduceCostInput,
  fasterAllReduce,
  predictAllReduceMs,
} from './all-reduce-cost.js';
export type { DeviceSpec } from './analytic.js';
export {
  bestOverBatches,
  planEven,
  planMemoryShare,
  planSolo,
  proportionalRanges,
} from './baselines.js';
export {
  buildLinkTable,
  DEFAULT_PROMPT_TOKENS,
  resolveWorkload,
  validateCluster,
} from './cluster.js';
export { CostModel } from './cost-model.js';
export {
  type DeploymentConfig,
  describeConfig,
  type FidelityTable,
  type LayerChoice,
  type LayerFidelity,
  type PrecisionCosts,
  type PrecisionTimeScale,
  type PredictedFidelity,
  predictFidelity,
  type QuantizedPrecision,
} from './deployment/config.js';
export {
  DEFAULT_SEARCH_EVALUATIONS_PER_ALGORITHM,
  type DeploymentCandidate,
  type DeploymentRun,
  type DeploymentSearchOptions,
  type DeploymentSearchRequest,
  type DeploymentSearchResult,
  searchDeployments,
} from './deployment/search.js';
export {
  compareFitness,
  type Fitness,
  runGa,
  runHybrid,
  runPso,
  SWARM_ALGORITHMS,
  type SwarmAlgorithm,
  type SwarmOptions,
  type SwarmOutcome,
  type SwarmProblem,
} from './deployment/swarm.js';
export { type DeviceType, groupDeviceTypes } from './device-types.js';
export {
  DEFAULT_DP_STATE_LIMIT,
  type DpOptions,
  type DpResult,
  dpStateCount,
  dpTypes,
  planDp,
} from './dp.js';
export { planGa, type SearchOptions, type SearchOutcome } from './ga.js';
export { interpolateAxis, interpolateGrid } from './grid.js';
export {
  DEFAULT_TENSOR_COSTS,
  GroupCosts,
  type GroupSplit,
  type TensorCosts,
} from './group-cost.js';
export { HYBRID_STEP_LIMIT, planHybrid } from './hybrid-search.js';
export { LLAMA2_7B_CONFIG, llamaModelSummary, TINYLLAMA_1B_CONFIG } from './model-summary.js';
export {
  type BatchRun,
  batchRuns,
  compareCandidates,
  compareEvaluations,
} from './objective.js';
export {
  PARALLELISMS,
  type Parallelism,
  type ParallelOptions,
  type ParallelResult,
  planTensor,
} from './parallel-search.js';
export {
  compareParallelism,
  comparePlanners,
  type ParallelismComparison,
  type PlannerComparison,
  plan,
} from './plan.js';
export {
  type Bottleneck,
  type Evaluation,
  evaluatePlan,
  evaluateStage,
  type HopEvaluation,
  type StageAssignment,
  type StageEvaluation,
  stageAssignments,
} from './plan-evaluation.js';
export {
  clusterFromPresets,
  DEVICE_PRESETS,
  type DevicePreset,
  findPreset,
  type LinkSpec,
} from './presets.js';
export { planPso } from './pso.js';
export { toPlanResult } from './result.js';
export {
  comparisonRows,
  parallelismRows,
  stageDevicesText,
  stageRows,
  summaryRows,
} from './rows.js';
export {
  BENCH_CORE,
  BENCH_CORE_MS_PER_TOKEN,
  benchCorePreset,
  findScenario,
  PLAN_SCENARIOS,
  type PlanScenario,
  type ScenarioCalibration,
  STORIES110M_PRESET_CONFIG,
  scenarioCluster,
  scenarioTensorCosts,
} from './scenarios.js';
export { decode, encode, fitCuts, type SearchSpace } from './search-space.js';
export type {
  Objective,
  PlannedHop,
  PlannedStage,
  PlannerName,
  PlanOptions,
  PlanRequest,
  PlanResult,
  Workload,
} from './types.js';
export { formatBytes, formatMs, msToNs, NS_PER_MS, nsToMs } from './units.js';
