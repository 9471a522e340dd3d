/**
 * @swarmbee/bench — benchmark suites and their reports (tables, JSON, Markdown, SVG), and the
 * measurements `swarmbee optimize` runs: fidelity against a reference on a corpus, layer
 * redundancy for pruning, and decode speed measured fairly on a noisy machine.
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
export * from './gguf/llama-bench.js';
export * from './gguf/llama-cpp-files.js';
export * from './local-cluster.js';
export * from './machine.js';
export * from './memory-bandwidth.js';
export * from './optimize/calibration.js';
export * from './optimize/corpus.js';
export * from './optimize/decode-speed.js';
export * from './optimize/fidelity.js';
export * from './optimize/layer-fidelity.js';
export * from './optimize/pipelines.js';
export * from './optimize/precision-timing.js';
export * from './optimize/prune-choice.js';
export * from './optimize/workflows.js';
export * from './report/report.js';
export * from './report/svg.js';
export * from './shared-models.js';
export * from './stats.js';
export * from './suite.js';
export { timeDecode } from './suites/engine.js';
export * from './suites/index.js';
