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
export * from './chaos/faults.js';
export * from './chaos/process-cluster.js';
export * from './chaos/run.js';
export * from './chaos/streams.js';
export * from './cluster-bench/index.js';
export * from './compare.js';
export * from './core-placement.js';
export * from './gguf/llama-bench.js';
export * from './machine.js';
export * from './memory-bandwidth.js';
export * from './report/report.js';
export * from './report/svg.js';
export * from './shared-models.js';
export * from './suite.js';
export * from './suites/index.js';
