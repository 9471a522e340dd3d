/**
 * @swarmbee/bench — benchmark suites and their reports (tables, JSON, Markdown, SVG). It only
 * measures: what `swarmbee optimize` runs is @swarmbee/optimize, which the optimize suites
 * measure like any user would.
 *
 * @example
 * ```ts
 * import { SUITES, writeReport } from '@swarmbee/bench';
 * const result = await SUITES.engine!.run({ quick: true, progress: console.error, command: 'example' });
 * await writeReport('bench-results/engine', result);
 * ```
 */
export { type ChaosOptions, type ChaosResult, chaosFaults, runChaos } from './chaos/run.js';
export {
  type CellResult,
  type ClusterBenchOptions,
  DEFAULT_MATRIX,
  type Matrix,
  type PlanCase,
  type PlanMeasurement,
  runClusterBench,
  type StageTimeline,
  type SweepOptions,
  type TimedCompletion,
} from './cluster-bench/index.js';
export { compareResults, loadResult, type MetricRatio } from './compare.js';
export { coresBySpeed } from './core-placement.js';
export {
  findLlamaBench,
  type LlamaBenchFigure,
  parseLlamaBench,
  runLlamaBench,
} from './gguf/llama-bench.js';
export { type MachineInfo, machineInfo } from './machine.js';
export {
  type BenchChart,
  type BenchCheck,
  type BenchResult,
  type BenchTable,
  check,
  writeReport,
} from './report/report.js';
export {
  type Bar,
  barChart,
  lineChart,
  type Series,
  type TimelineSpan,
  timelineChart,
} from './report/svg.js';
export { type HeadShareRow, headShare } from './scale/head-share.js';
export {
  type ServePartOptions,
  type ServeSpeedRow,
  servePart,
  WORKER_OVERHEAD_TARGET_BYTES,
  type WorkerLoadRow,
} from './scale/serve-part.js';
export { SUITES } from './suites/index.js';
export { cachedQuantized } from './suites/optimize-speed.js';
