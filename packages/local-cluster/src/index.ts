/**
 * @swarmbee/local-cluster — a whole cluster on loopback: the coordinator in this process,
 * each worker its own `swarmbee worker` process (optionally pinned to a core, as a small
 * board would be). `swarmbee up` serves from one; the benchmarks measure one. It sits
 * above the coordinator and the worker and below the CLI, so neither needs the benchmarks.
 *
 * @example
 * ```ts
 * import { openModelDir } from '@swarmbee/model';
 * import { LocalCluster } from '@swarmbee/local-cluster';
 * const cluster = await LocalCluster.start({
 *   model: await openModelDir('models/s260k'),
 *   workers: 2,
 *   cliBin: 'packages/cli/bin/swarmbee.js',
 *   cacheDir: '/tmp/swarmbee-local',
 * });
 * console.log(cluster.apiUrl); // OpenAI-compatible API, e.g. http://127.0.0.1:41234
 * await cluster.stop();
 * ```
 */
export {
  LocalCluster,
  type LocalClusterOptions,
  stopProcess,
  WORKER_EXIT_GRACE_MS,
} from './local-cluster.js';
