/**
 * @swarmbee/bench — benchmark suites and their reports (tables, JSON, Markdown, SVG).
 *
 * @example
 * ```ts
 * import { SUITES, writeReport } from '@swarmbee/bench';
 * const result = await SUITES.engine!.run({ quick: true, progress: console.error, command: 'example' });
 * await writeReport('bench-results/engine', result);
 * ```
 */
export * from './cluster-bench/index.js';
export * from './compare.js';
export * from './local-cluster.js';
export * from './machine.js';
export * from './memory-bandwidth.js';
export * from './report/report.js';
export * from './report/svg.js';
export * from './stats.js';
export * from './suite.js';
export { timeDecode } from './suites/engine.js';
export * from './suites/index.js';
