/**
 * @swarmbee/worker — the stage worker daemon.
 *
 * @example
 * ```ts
 * import { WorkerDaemon } from '@swarmbee/worker';
 * const worker = new WorkerDaemon({ coordinatorUrl: 'ws://127.0.0.1:7070', token, name: 'pi-1', cacheDir: '/var/cache/swarmbee' });
 * await worker.start(); // registered; the coordinator deploys a stage to it
 * ```
 */
export * from './advertise.js';
export * from './device.js';
export * from './device-profiler.js';
export * from './discovery.js';
export * from './events.js';
export * from './node-flags.js';
export * from './shard-cache.js';
export * from './stage-runner.js';
export * from './stage-timeline.js';
export * from './state.js';
export * from './worker.js';
export * from './worker-options.js';
