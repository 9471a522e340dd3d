/** A worker's lifecycle events as log lines (see lifecycle-log.ts). */
import { WORKER_EVENTS, type WorkerEventMap } from '@swarmbee/worker';
import { type Lines, subscribeAll } from './lifecycle-log.js';
import type { DaemonLog } from './log.js';

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
  [WORKER_EVENTS.trainingStarted]: (e) =>
    `training session ${e.session}: adapters on layers [${e.layerStart}, ${e.layerEnd}) of stage ${e.stage}`,
  [WORKER_EVENTS.trainingEnded]: (e) => `training session ${e.session} ended`,
  [WORKER_EVENTS.roundStarted]: (e) =>
    `federated round ${e.round}: training ${e.steps} steps at rank ${e.rank}${e.prunedLayers ? ` without ${e.prunedLayers} layer(s)` : ''} on this worker's data`,
  [WORKER_EVENTS.roundTrained]: (e) =>
    `federated round ${e.round}: ${e.steps} steps at rank ${e.rank}, loss ${e.lossBefore.toFixed(4)} -> ${e.lossAfter.toFixed(4)} in ${(e.trainMs / 1000).toFixed(1)} s`,
};

/** One worker's lifecycle on its log (events of other workers in this process are not its). */
export function logWorkerEvents(log: DaemonLog, worker: string): () => void {
  return subscribeAll(WORKER_LINES, log, (event) => event.worker === worker);
}
