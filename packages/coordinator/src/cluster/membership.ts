/**
 * What the coordinator does when a worker joins or leaves: a joining worker is announced,
 * its memory refusals forgotten, its stray batch errors reported, and a (re-)deployment
 * considered; a lost worker that ran a stage faults the deployment (which re-plans).
 */
import { COORDINATOR_EVENTS, publishCoordinatorEvent } from '../events.js';
import type { Deployments } from './deployments.js';
import type { PlanChoice } from './plan-choice.js';
import type { WorkerLink } from './worker-link.js';

/** The coordinator's state as a join needs it. */
export interface Membership {
  plans: PlanChoice;
  deployments: Deployments;
  /** The coordinator is stopped: nothing is deployed any more. */
  stopped: boolean;
  /** Workers connected now, the one joining included. */
  connected: number;
  /** Workers the first deployment waits for. */
  minWorkers: number;
}

export function workerJoined(link: WorkerLink, cachedShards: number, at: Membership): void {
  const { deployments } = at;
  // Its memory may have changed while it was away: plan with what it reports now.
  at.plans.forget(link.name);
  link.onBatchError = (error) => {
    if (!deployments.current?.transport.onBatchError(error)) {
      publishCoordinatorEvent(COORDINATOR_EVENTS.strayBatchError, () => ({
        worker: link.name,
        stage: error.stage,
        batchId: error.batchId,
        code: error.code,
        message: error.message,
      }));
    }
  };
  publishCoordinatorEvent(COORDINATOR_EVENTS.workerJoined, () => ({
    worker: link.name,
    arch: link.device.arch,
    cpus: link.device.cpus,
    dataUrl: link.dataUrl,
    cachedShards,
  }));
  if (at.stopped) return;
  if (deployments.current || deployments.everDeployed) {
    void deployments.request('consider', `worker ${link.name} joined`);
  } else if (at.connected >= at.minWorkers) {
    void deployments.request('consider', 'deploy');
  }
}

export function workerLeft(link: WorkerLink, deployments: Deployments): void {
  const deployment = deployments.current;
  const ranStage = deployment?.links.includes(link) ?? false;
  publishCoordinatorEvent(COORDINATOR_EVENTS.workerLost, () => ({ worker: link.name, ranStage }));
  if (deployment && ranStage)
    deployments.fault(deployment, `worker ${link.name}, which ran a stage, was lost`);
}
