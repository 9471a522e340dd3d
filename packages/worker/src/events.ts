/**
 * The worker daemon's life cycle as `node:diagnostics_channel` events with typed payloads.
 * Every payload names its worker, so one subscriber can follow several daemons of one
 * process. The CLI's log lines are written by a subscriber; tests and tools subscribe the
 * same way. Publishing costs nothing when no one subscribes.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { WORKER_EVENTS, type StageReadyEvent } from '@swarmbee/worker';
 * subscribe(WORKER_EVENTS.stageReady, (e) => console.log((e as StageReadyEvent).stage));
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { WorkerState } from './state.js';

/** Channel names, stable like error codes. */
export const WORKER_EVENTS = {
  /** The worker went from one state to another (see WorkerState). */
  state: 'swarmbee:worker:state',
  /** The coordinator accepted the worker under `workerId`. */
  registered: 'swarmbee:worker:registered',
  /** The coordinator could not be reached; the worker tries again after `delayMs`. */
  joinRetry: 'swarmbee:worker:join-retry',
  /** The control connection to the coordinator closed; the worker re-joins. */
  coordinatorLost: 'swarmbee:worker:coordinator-lost',
  /** The worker joined and serves stage traffic at `dataUrl`. */
  serving: 'swarmbee:worker:serving',
  /** A shard offered by the coordinator was in the cache (`cached`) or arrived and was verified. */
  shardStored: 'swarmbee:worker:shard-stored',
  /** An offered shard resumes an interrupted transfer: `verifiedBytes` need not be sent again. */
  shardResumed: 'swarmbee:worker:shard-resumed',
  /** Reading the control connection paused (`paused`) or resumed because of chunks waiting for the disk. */
  shardBackpressure: 'swarmbee:worker:shard-backpressure',
  /** A stage is loaded and takes batches. */
  stageReady: 'swarmbee:worker:stage-ready',
  /** A training session started on the loaded stage's layers (`train.load`). */
  trainingStarted: 'swarmbee:worker:training-started',
  /** A training session ended (closed by the coordinator, or its stage went). */
  trainingEnded: 'swarmbee:worker:training-ended',
  /** A data owner began a federated round on its own data. */
  roundStarted: 'swarmbee:worker:round-started',
  /** A data owner trained a federated round on its own data. */
  roundTrained: 'swarmbee:worker:round-trained',
} as const;

export type WorkerEventName = (typeof WORKER_EVENTS)[keyof typeof WORKER_EVENTS];

export interface WorkerStateEvent {
  worker: string;
  from: WorkerState;
  to: WorkerState;
}

export interface RegisteredEvent {
  worker: string;
  /** The id the coordinator gave it. */
  workerId: string;
}

export interface JoinRetryEvent {
  worker: string;
  coordinatorUrl: string;
  /** Why the last attempt failed. */
  code: string;
  delayMs: number;
}

export interface CoordinatorLostEvent {
  worker: string;
}

export interface ServingEvent {
  worker: string;
  dataUrl: string;
}

export interface ShardStoredEvent {
  worker: string;
  shardId: string;
  /** True when the cache held it already: nothing was transferred. */
  cached: boolean;
  /** Bytes received (0 when cached or unknown). */
  bytes: number;
}

export interface ShardResumedEvent {
  worker: string;
  shardId: string;
  /** Bytes on disk, verified chunk by chunk, from the interrupted transfer. */
  verifiedBytes: number;
  /** The shard's bytes in all. */
  bytes: number;
}

export interface ShardBackpressureEvent {
  worker: string;
  /** True when reading stopped, false when it started again. */
  paused: boolean;
  /** Bytes of received chunks waiting for the disk at that moment. */
  pendingBytes: number;
}

export interface StageReadyEvent {
  worker: string;
  stage: number;
  layerStart: number;
  layerEnd: number;
  loadMs: number;
  /** Where its outputs go: the next stage, or the coordinator after the last. */
  nextUrl: string;
}

export interface TrainingStartedEvent {
  worker: string;
  session: string;
  stage: number;
  layerStart: number;
  layerEnd: number;
  /** Whether it takes its input from / sends it on to a neighbouring worker directly. */
  links: { prev: boolean; next: boolean };
}

export interface TrainingEndedEvent {
  worker: string;
  session: string;
}

export interface RoundStartedEvent {
  worker: string;
  round: number;
  steps: number;
  rank: number;
  /** Layers pruned for the round. */
  prunedLayers: number;
}

export interface RoundTrainedEvent {
  worker: string;
  round: number;
  steps: number;
  rank: number;
  lossBefore: number;
  lossAfter: number;
  trainMs: number;
}

/** Each channel's payload, for typed subscribers. */
export interface WorkerEventMap {
  'swarmbee:worker:state': WorkerStateEvent;
  'swarmbee:worker:registered': RegisteredEvent;
  'swarmbee:worker:join-retry': JoinRetryEvent;
  'swarmbee:worker:coordinator-lost': CoordinatorLostEvent;
  'swarmbee:worker:serving': ServingEvent;
  'swarmbee:worker:shard-stored': ShardStoredEvent;
  'swarmbee:worker:shard-resumed': ShardResumedEvent;
  'swarmbee:worker:shard-backpressure': ShardBackpressureEvent;
  'swarmbee:worker:stage-ready': StageReadyEvent;
  'swarmbee:worker:training-started': TrainingStartedEvent;
  'swarmbee:worker:training-ended': TrainingEndedEvent;
  'swarmbee:worker:round-started': RoundStartedEvent;
  'swarmbee:worker:round-trained': RoundTrainedEvent;
}

/** Publishes a worker event (built only when someone listens). */
export function publishWorkerEvent<N extends WorkerEventName>(
  name: N,
  build: () => WorkerEventMap[N],
): void {
  const target = channel(name);
  if (target.hasSubscribers) target.publish(build());
}
