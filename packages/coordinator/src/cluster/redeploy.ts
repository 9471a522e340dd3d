/**
 * Bringing a plan up on the workers connected now, again and again if workers fail
 * during it: each attempt takes the workers still connected, and after a failed attempt
 * plans afresh (a remembered plan may no longer fit; a worker that refused its stage for
 * memory is planned within what it reported it can hold). When nothing can be deployed the
 * error every waiting request should get is a retryable CLUSTER_UNAVAILABLE naming why.
 */
import {
  asSwarmBeeError,
  ClusterUnavailableError,
  MemoryShortError,
  type MemoryShortfall,
  type Plan,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { PlanResult } from '@swarmbee/planner';
import { MAX_DEPLOY_ATTEMPTS } from './coordinator-options.js';
import type { Deployment } from './deployment.js';

export interface RedeployOptions {
  reason: string;
  /** The first attempt's plan; later attempts (and a missing one) choose for the workers left. */
  plan: Plan | PlanResult | undefined;
  /** Plan afresh rather than recall a remembered plan. */
  fresh: boolean;
  /** Names of the workers connected now. */
  connected: () => string[];
  choose: (names: string[], fresh: boolean) => Promise<Plan | PlanResult>;
  deploy: (plan: Plan | PlanResult, candidates: string[]) => Promise<Deployment>;
  /** A worker refused its stage for memory, reporting what it can hold: plan around it. */
  refused: (shortfall: MemoryShortfall) => void;
  /** True once the coordinator is stopping: no further attempt. */
  stopped: () => boolean;
  log: (line: string) => void;
}

export interface Redeployed {
  deployment: Deployment;
  /** The workers the plan was chosen among. */
  candidates: string[];
}

/** @throws ClusterUnavailableError (retryable) when no attempt succeeded. */
export async function redeploy(options: RedeployOptions): Promise<Redeployed> {
  let failure: SwarmBeeError | undefined;
  let next = options.plan;
  let fresh = options.fresh;
  for (let attempt = 1; attempt <= MAX_DEPLOY_ATTEMPTS && !options.stopped(); attempt++) {
    const names = options.connected();
    if (names.length === 0) {
      failure = new ClusterUnavailableError(
        `${options.reason}, and no worker is left to run the model`,
      );
      break;
    }
    try {
      const chosen = next ?? (await options.choose(names, fresh));
      next = undefined;
      options.log(
        `deploying ${chosen.stages.length} stage(s): ${chosen.stages.map((s) => `${s.device}[${s.layerStart},${s.layerEnd})`).join(' -> ')}`,
      );
      return { deployment: await options.deploy(chosen, names), candidates: names };
    } catch (error) {
      failure = asSwarmBeeError(error);
      options.log(`deployment attempt ${attempt} failed: ${failure.code}: ${failure.message}`);
      fresh = true;
      // A worker short of memory said how much it can hold: the next plan fits within it.
      if (failure instanceof MemoryShortError && failure.memory) {
        options.refused(failure.memory);
        continue;
      }
      if (!failure.retryable) break;
    }
  }
  if (failure instanceof ClusterUnavailableError) throw failure;
  throw new ClusterUnavailableError(
    `${options.reason}, and no plan could be deployed (${failure?.code ?? 'stopped'}: ${failure?.message ?? 'the coordinator is stopping'}); retry once workers are back`,
    { cause: failure },
  );
}
