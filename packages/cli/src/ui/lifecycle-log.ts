/**
 * A daemon's log, written from its lifecycle events (node:diagnostics_channel): the
 * coordinator and the worker publish what happens, and these subscribers turn it into
 * the lines an operator reads (or, with --log-format json, into event lines a tool reads).
 * Each returns the function that unsubscribes it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { COORDINATOR_EVENTS, type CoordinatorEventMap } from '@swarmbee/coordinator';
import { WORKER_EVENTS, type WorkerEventMap } from '@swarmbee/worker';
import type { DaemonLog } from './log.js';

type Lines<M> = { [N in keyof M]: (event: M[N]) => string | undefined };

const COORDINATOR_LINES: Lines<CoordinatorEventMap> = {
  [COORDINATOR_EVENTS.listening]: (e) =>
    `listening for workers on ${e.workersUrl}; API on ${e.apiUrl}`,
  [COORDINATOR_EVENTS.state]: (e) => (e.to === 'ready' ? 'ready' : undefined),
  [COORDINATOR_EVENTS.workerJoined]: (e) =>
    `worker ${e.worker} joined (${e.arch}, ${e.cpus} cpus, data ${e.dataUrl}, ${e.cachedShards} cached shards)`,
  [COORDINATOR_EVENTS.workerLost]: (e) => `worker ${e.worker} left`,
  [COORDINATOR_EVENTS.replanning]: (e) => `${e.reason}: ${e.step}`,
  [COORDINATOR_EVENTS.deployed]: () => undefined,
  [COORDINATOR_EVENTS.replayed]: (e) =>
    `recovered in ${e.durationMs.toFixed(0)} ms, replaying ${e.replayed} sequence(s)`,
  [COORDINATOR_EVENTS.strayBatchError]: (e) =>
    `stage ${e.stage ?? '?'} on ${e.worker} failed batch ${e.batchId}, which this coordinator did not send: ${e.code}: ${e.message}`,
};

const WORKER_LINES: Lines<WorkerEventMap> = {
  [WORKER_EVENTS.state]: (e) => `state ${e.from} -> ${e.to}`,
  [WORKER_EVENTS.registered]: (e) => `registered with the coordinator as ${e.workerId}`,
  [WORKER_EVENTS.joinRetry]: (e) =>
    `cannot reach the coordinator at ${e.coordinatorUrl} (${e.code}); retrying in ${e.delayMs} ms`,
  [WORKER_EVENTS.coordinatorLost]: () => 'lost the coordinator; re-joining',
  [WORKER_EVENTS.serving]: (e) => `serving stage traffic on ${e.dataUrl}`,
  [WORKER_EVENTS.shardStored]: (e) =>
    e.cached
      ? `shard ${e.shardId.slice(0, 12)} found in cache: no transfer`
      : `shard ${e.shardId.slice(0, 12)} received and verified${e.bytes ? ` (${e.bytes} bytes)` : ''}`,
  [WORKER_EVENTS.shardResumed]: (e) =>
    `shard ${e.shardId.slice(0, 12)}: resuming an interrupted transfer, ${e.verifiedBytes} of ${e.bytes} bytes already verified`,
  // Pauses come and go with every burst of a slow disk: not a line each.
  [WORKER_EVENTS.shardBackpressure]: () => undefined,
  [WORKER_EVENTS.stageReady]: (e) =>
    `stage ${e.stage} ready: layers [${e.layerStart}, ${e.layerEnd}) in ${e.loadMs.toFixed(0)} ms, sending to ${e.nextUrl}`,
};

function subscribeAll<M>(
  lines: Lines<M>,
  log: DaemonLog,
  accept: (event: M[keyof M]) => boolean = () => true,
): () => void {
  const handlers = Object.entries(lines).map(([name, line]) => {
    const handler = (message: unknown) => {
      const event = message as M[keyof M];
      if (!accept(event)) return;
      log.event(name, event as object, (line as (e: M[keyof M]) => string | undefined)(event));
    };
    subscribe(name, handler);
    return () => unsubscribe(name, handler);
  });
  return () => {
    for (const off of handlers) off();
  };
}

/** The coordinator's lifecycle on its log. */
export function logCoordinatorEvents(log: DaemonLog): () => void {
  return subscribeAll(COORDINATOR_LINES, log);
}

/** One worker's lifecycle on its log (events of other workers in this process are not its). */
export function logWorkerEvents(log: DaemonLog, worker: string): () => void {
  return subscribeAll(WORKER_LINES, log, (event) => event.worker === worker);
}
