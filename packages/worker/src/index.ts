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
export {
  type DiscoveredCoordinator,
  type DiscoverOptions,
  discoverCoordinator,
} from './discovery.js';
export {
  type CoordinatorLostEvent,
  type JoinRetryEvent,
  publishWorkerEvent,
  type RegisteredEvent,
  type RoundStartedEvent,
  type RoundTrainedEvent,
  type ServingEvent,
  type ShardBackpressureEvent,
  type ShardResumedEvent,
  type ShardStoredEvent,
  type StageReadyEvent,
  type TrainingEndedEvent,
  type TrainingStartedEvent,
  WORKER_EVENTS,
  type WorkerEventMap,
  type WorkerEventName,
  type WorkerStateEvent,
} from './events.js';
export type { DataOwnerOptions } from './federated-owner.js';
export type { OpenShardFile, ShardFileSink } from './incoming-shard.js';
export { STAGE_OVERHEAD_BYTES } from './memory-fit.js';
export { WORKER_NODE_FLAGS } from './node-flags.js';
/** A worker's content-addressed shard cache on disk: what a cache dir holds, partial transfers included. */
export { ShardCache, type ShardCacheOptions } from './shard-cache.js';
export { DEFAULT_MAX_PENDING_SHARD_BYTES } from './shard-intake.js';
export type { WorkerState } from './state.js';
export type { TensorGroupJoinOptions } from './tensor-groups.js';
export { WorkerDaemon } from './worker.js';
export type { WorkerOptions } from './worker-options.js';
