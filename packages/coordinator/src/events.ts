/**
 * The coordinator's life cycle as `node:diagnostics_channel` events with typed payloads:
 * workers joining and leaving, re-plans, deployments, replays and every change of state.
 * The CLI's log lines are written by a subscriber; tests, the web console and operators'
 * tools subscribe the same way. Publishing costs nothing when no one subscribes.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { COORDINATOR_EVENTS, type WorkerJoinedEvent } from '@swarmbee/coordinator';
 * subscribe(COORDINATOR_EVENTS.workerJoined, (e) => console.log((e as WorkerJoinedEvent).worker));
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { CoordinatorState } from './cluster/coordinator-state.js';
import type { DeployedStage } from './cluster/deployer.js';

/** Channel names, stable like error codes. */
export const COORDINATOR_EVENTS = {
  /** Both ports are bound: workers connect to `workersUrl`, clients to `apiUrl`. */
  listening: 'swarmbee:coordinator:listening',
  /** The coordinator went from one state to another (see CoordinatorState). */
  state: 'swarmbee:coordinator:state',
  /** A worker registered. */
  workerJoined: 'swarmbee:coordinator:worker-joined',
  /** A worker's control connection closed; `ranStage` when the serving pipeline needed it. */
  workerLost: 'swarmbee:coordinator:worker-lost',
  /** A reconfiguration began: a plan is chosen (`planning`) or a given one deployed. */
  replanning: 'swarmbee:coordinator:replanning',
  /** A plan's stages are loaded and the scheduler sends batches into them. */
  deployed: 'swarmbee:coordinator:deployed',
  /** A deployment replaced another (or came back after none was left): live sequences replayed into it. */
  replayed: 'swarmbee:coordinator:replayed',
  /** A stage failed a batch this coordinator never sent (a stray or forged frame). */
  strayBatchError: 'swarmbee:coordinator:stray-batch-error',
} as const;

export type CoordinatorEventName = (typeof COORDINATOR_EVENTS)[keyof typeof COORDINATOR_EVENTS];

export interface ListeningEvent {
  workersUrl: string;
  apiUrl: string;
}

export interface CoordinatorStateEvent {
  from: CoordinatorState;
  to: CoordinatorState;
}

export interface WorkerJoinedEvent {
  worker: string;
  arch: string;
  cpus: number;
  dataUrl: string;
  /** Shards the worker already holds in its cache. */
  cachedShards: number;
}

export interface WorkerLostEvent {
  worker: string;
  /** Whether it ran a stage of the serving deployment (a repair follows). */
  ranStage: boolean;
}

export interface ReplanningEvent {
  /** Why: a worker lost or joined, a fault, a re-plan asked for, the first deployment. */
  reason: string;
  /** `planning` when a plan is chosen now, `deploying` when the plan is already decided. */
  step: 'planning' | 'deploying';
}

export interface DeployedEvent {
  stages: DeployedStage[];
  /** Micro-batches the scheduler keeps in flight on it. */
  maxInFlight: number;
}

export interface ReplayedEvent {
  reason: string;
  /** The workers the new plan runs on, in stage order. */
  workers: string[];
  /** From the loss (or the request) to the new pipeline taking batches, ms. */
  durationMs: number;
  /** Sequences replayed into the new pipeline. */
  replayed: number;
}

export interface StrayBatchErrorEvent {
  worker: string;
  stage: number | undefined;
  batchId: number | undefined;
  code: string;
  message: string;
}

/** Each channel's payload, for typed subscribers. */
export interface CoordinatorEventMap {
  'swarmbee:coordinator:listening': ListeningEvent;
  'swarmbee:coordinator:state': CoordinatorStateEvent;
  'swarmbee:coordinator:worker-joined': WorkerJoinedEvent;
  'swarmbee:coordinator:worker-lost': WorkerLostEvent;
  'swarmbee:coordinator:replanning': ReplanningEvent;
  'swarmbee:coordinator:deployed': DeployedEvent;
  'swarmbee:coordinator:replayed': ReplayedEvent;
  'swarmbee:coordinator:stray-batch-error': StrayBatchErrorEvent;
}

/** Publishes a coordinator event (built only when someone listens). */
export function publishCoordinatorEvent<N extends CoordinatorEventName>(
  name: N,
  build: () => CoordinatorEventMap[N],
): void {
  const target = channel(name);
  if (target.hasSubscribers) target.publish(build());
}
