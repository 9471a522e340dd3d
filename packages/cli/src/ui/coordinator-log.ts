/** The coordinator's lifecycle events as log lines (see lifecycle-log.ts). */
import { COORDINATOR_EVENTS, type CoordinatorEventMap } from '@swarmbee/coordinator';
import { type Lines, subscribeAll } from './lifecycle-log.js';
import type { DaemonLog } from './log.js';

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

/** The coordinator's lifecycle on its log. */
export function logCoordinatorEvents(log: DaemonLog): () => void {
  return subscribeAll(COORDINATOR_LINES, log);
}
