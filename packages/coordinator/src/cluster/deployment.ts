/**
 * One deployment of a plan: the stages loaded on their workers, the data link to
 * stage 0, and the transport the scheduler sends micro-batches through. A new plan
 * (a re-plan, or recovery from a lost worker) brings up a new deployment; the
 * scheduler replays its live sequences into it.
 */
import { type ClusterProfile, type Plan, type SwarmBeeError, stageDevices } from '@swarmbee/core';
import type { PlanResult } from '@swarmbee/planner';
import {
  type Channel,
  type ClientTlsOptions,
  connectShaped,
  type LinkShape,
} from '@swarmbee/protocol';
import { type DeployedStage, type DeployOptions, deployPlan } from './deployer.js';
import { isPlanResult } from './planning.js';
import { RemoteTransport } from './remote-transport.js';
import type { ShardStore } from './shard-store.js';
import type { WorkerLink } from './worker-link.js';

export interface Deployment {
  plan: Plan | PlanResult;
  stages: DeployedStage[];
  /** The control links of the workers running it: if one closes, the deployment is broken. */
  links: WorkerLink[];
  /** Worker names the plan was chosen among (connected when it was planned). */
  candidates: string[];
  stage0: Channel<'data'>;
  transport: RemoteTransport;
  /** Micro-batches the scheduler should keep in flight for this plan. */
  maxInFlight: number;
  /** Set when a link or stage of it broke: the next reconfiguration rebuilds it. */
  faulted: boolean;
}

export interface BringUpOptions {
  workers: ReadonlyMap<string, WorkerLink>;
  store: ShardStore;
  /** Where the last stage sends its tokens. */
  coordinatorUrl: string;
  token: string;
  linkShape?: LinkShape;
  clientTls?: ClientTlsOptions;
  deploy: DeployOptions;
  /** Worker names the plan was chosen among. */
  candidates: string[];
  /** Hears of a batch that failed because the pipeline broke. */
  onFault: (error: SwarmBeeError) => void;
}

export async function bringUp(
  plan: Plan | PlanResult,
  options: BringUpOptions,
): Promise<Deployment> {
  const stages = await deployPlan(
    plan,
    options.workers,
    options.store,
    options.coordinatorUrl,
    options.deploy,
  );
  // Every member of a group counts: losing any breaks the stage.
  const links = plan.stages.flatMap((s) => stageDevices(s).map((d) => options.workers.get(d)!));
  const first = options.workers.get(plan.stages[0]!.device)!;
  const stage0 = await connectShaped(
    first.dataUrl,
    { token: options.token, role: 'coordinator', name: 'coordinator', tls: options.clientTls },
    options.linkShape,
  );
  // One micro-batch per stage keeps every stage busy; a throughput plan may ask for more.
  const planned =
    isPlanResult(plan) && plan.objective === 'throughput' ? plan.microBatchesInFlight : 1;
  return {
    plan,
    stages,
    links,
    candidates: options.candidates,
    stage0,
    transport: new RemoteTransport(stage0, options.onFault),
    maxInFlight: Math.max(plan.stages.length, planned),
    faulted: false,
  };
}

/** Ends a deployment's data link; batches still out are failed (the scheduler has let them go). */
export function tearDown(
  deployment: Deployment,
  error: Parameters<RemoteTransport['failAll']>[0],
): void {
  deployment.transport.failAll(error);
  deployment.stage0.close(1001, 'pipeline replaced');
}

/** The profile restricted to these workers (and their links), or undefined if one is missing. */
export function profileFor(
  profile: ClusterProfile | undefined,
  names: ReadonlySet<string>,
): ClusterProfile | undefined {
  if (!profile) return undefined;
  const devices = profile.devices.filter((d) => names.has(d.name));
  if (devices.length !== names.size) return undefined;
  const known = (node: string) => node === 'coordinator' || names.has(node);
  return { ...profile, devices, links: profile.links.filter((l) => known(l.from) && known(l.to)) };
}
