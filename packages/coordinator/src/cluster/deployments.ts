/**
 * The cluster's deployments over time: the one serving, and its replacement when a
 * worker goes (repair), comes (consider: taken in when PlanChoice says it pays) or a
 * re-plan is asked for. Reconfigurations run one at a time through a queue that merges
 * requests made while one waits, so several workers lost at once cost one re-plan.
 * A replacement detaches the scheduler, deploys, and replays every live sequence into
 * the new pipeline; when nothing can be deployed, every waiting request fails at once
 * with a retryable CLUSTER_UNAVAILABLE, and new ones get 503 until workers return.
 */
import {
  asSwarmBeeError,
  ClusterUnavailableError,
  type Plan,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { Scheduler } from '@swarmbee/engine';
import type { PlanResult } from '@swarmbee/planner';
import { answerProbe, type Channel } from '@swarmbee/protocol';
import { COORDINATOR_EVENTS, publishCoordinatorEvent } from '../events.js';
import type { RecoveryEvent } from './coordinator-options.js';
import { type CoordinatorState, CoordinatorStateMachine } from './coordinator-state.js';
import { type Deployment, tearDown } from './deployment.js';
import type { PlanChoice } from './plan-choice.js';
import {
  type Reconfiguration,
  type ReconfigurationMode,
  ReconfigurationQueue,
} from './reconfigurations.js';
import { redeploy } from './redeploy.js';
import type { WorkerLink } from './worker-link.js';

export interface DeploymentsOptions {
  scheduler: Scheduler;
  plans: PlanChoice;
  /** Workers connected now, sorted by name. */
  connected: () => WorkerLink[];
  /** Brings a plan up; `onFault` hears of a broken pipeline. */
  bringUp: (
    plan: Plan | PlanResult,
    candidates: string[],
    onFault: (reason: string) => void,
  ) => Promise<Deployment>;
  /** Micro-batches in flight, when set; else each deployment's own. */
  maxInFlight?: number;
  log: (line: string) => void;
}

export class Deployments {
  readonly #options: DeploymentsOptions;
  readonly #queue: ReconfigurationQueue;
  readonly #recoveries: RecoveryEvent[] = [];
  /** The last stage's token link per peer name (`<worker>/stage-<n>`), newest connection. */
  readonly #tokenLinks = new Map<string, Channel<'data'>>();
  #current?: Deployment;
  readonly #machine = new CoordinatorStateMachine();
  /** Whether any plan was ever deployed: after that, one returning worker is enough to serve. */
  #everDeployed = false;
  #readyWaiters: { resolve: () => void; reject: (e: SwarmBeeError) => void }[] = [];
  /** Why the last replacement deployed nothing (a worker's refusal, say), until one succeeds. */
  #lastFailure?: SwarmBeeError;

  constructor(options: DeploymentsOptions) {
    this.#options = options;
    this.#machine.onChange((from, to) =>
      publishCoordinatorEvent(COORDINATOR_EVENTS.state, () => ({ from, to })),
    );
    this.#queue = new ReconfigurationQueue(
      (job) => this.#reconfigure(job),
      (error) => options.log(`reconfiguration failed: ${asSwarmBeeError(error).message}`),
    );
  }

  get state(): CoordinatorState {
    return this.#machine.state;
  }

  /** Hears every change of state (after it happened). */
  onStateChange(listener: (from: CoordinatorState, to: CoordinatorState) => void): void {
    this.#machine.onChange(listener);
  }

  /** Why the last attempt to deploy failed, while nothing is deployed since. */
  get lastFailure(): SwarmBeeError | undefined {
    return this.#lastFailure;
  }

  get current(): Deployment | undefined {
    return this.#current;
  }

  get everDeployed(): boolean {
    return this.#everDeployed;
  }

  /** Every replacement of a deployment (recovery, return, re-plan), oldest first. */
  get recoveries(): readonly RecoveryEvent[] {
    return this.#recoveries;
  }

  /** Resolves once a plan is deployed and serving; rejects if deploying fails. */
  whenReady(): Promise<void> {
    if (this.#machine.is('ready')) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /** Asks for a reconfiguration; resolves (never rejects) once one including it has run. */
  request(mode: ReconfigurationMode, reason: string): Promise<void> {
    return this.#queue.request(mode, reason);
  }

  /** A link or stage of `deployment` broke: rebuild it (once, however many faults are seen). */
  fault(deployment: Deployment, reason: string): void {
    if (this.#current !== deployment || deployment.faulted || this.#machine.is('stopped')) return;
    deployment.faulted = true;
    void this.#queue.request('repair', reason);
  }

  /**
   * A last stage's data connection to the coordinator: its tokens go to the serving
   * deployment, and its closing breaks that deployment if it was its last stage's link.
   */
  acceptTokenLink(channel: Channel<'data'>): void {
    const name = channel.peer.name;
    this.#tokenLinks.set(name, channel);
    channel.on('message', (message) => {
      if (answerProbe(channel, message)) return;
      if (message.type === 'tokens') this.#current?.transport.onTokens(message);
      else if (message.type === 'error') this.#current?.transport.onBatchError(message);
    });
    channel.once('close', () => {
      if (this.#tokenLinks.get(name) !== channel) return;
      this.#tokenLinks.delete(name);
      const deployment = this.#current;
      const last = deployment?.stages.at(-1);
      if (deployment && last && name === `${last.worker}/stage-${last.stage}`)
        this.fault(deployment, `the token link from the last stage (${name}) closed`);
    });
  }

  /** Stops serving: live and waiting requests fail with `error`; nothing is deployed again. */
  stop(error: SwarmBeeError): void {
    if (this.#machine.is('stopped')) return;
    this.#machine.to('stopped');
    this.#options.scheduler.detach();
    this.#options.scheduler.failAll(error);
    if (this.#current) tearDown(this.#current, error);
    this.#current = undefined;
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
  }

  async #reconfigure(job: Reconfiguration): Promise<void> {
    if (this.#machine.is('stopped')) return;
    const reason = job.reasons.join('; ');
    const current = this.#current;
    const intact = current !== undefined && !current.faulted && current.links.every((l) => l.open);
    let plan: Plan | PlanResult | undefined;
    if (intact && job.mode !== 'replan') {
      // A repair an earlier reconfiguration already made; or a join that may not pay.
      if (job.mode === 'repair') return;
      const names = this.#options.connected().map((w) => w.name);
      plan = await this.#options.plans.decide(current, names, reason).catch((error: unknown) => {
        this.#options.log(`${reason}: keeping the plan (${asSwarmBeeError(error).message})`);
        return undefined;
      });
      if (!plan) return;
    }
    await this.#replace(reason, job.requestedAt, plan, job.mode === 'replan');
  }

  /**
   * Replaces the deployment (if any) with one of `plan`, or of a plan chosen for the
   * workers connected now, replaying live sequences into it.
   */
  async #replace(
    reason: string,
    requestedAt: number,
    plan: Plan | PlanResult | undefined,
    fresh: boolean,
  ): Promise<void> {
    const { scheduler, log } = this.#options;
    const replacing = this.#current;
    const returning = this.#everDeployed;
    this.#machine.to(replacing ? 'recovering' : 'deploying');
    const step = plan ? 'deploying' : 'planning';
    publishCoordinatorEvent(COORDINATOR_EVENTS.replanning, () => ({ reason, step }));
    if (replacing) {
      scheduler.detach();
      tearDown(replacing, new ClusterUnavailableError(reason));
      this.#current = undefined;
    }
    let deployment: Deployment;
    let candidates: string[];
    try {
      ({ deployment, candidates } = await redeploy({
        reason,
        plan,
        fresh,
        connected: () => this.#options.connected().map((w) => w.name),
        choose: (names, again) => this.#options.plans.choose(names, again),
        deploy: (chosen, names) => this.#bringUp(chosen, names),
        refused: (shortfall) => {
          log(
            `worker ${shortfall.worker} can hold at most ${shortfall.capacityBytes} bytes of weights and KV cache: planning within that`,
          );
          this.#options.plans.refused(shortfall);
        },
        stopped: () => this.#stopped(),
        log,
      }));
    } catch (error) {
      if (this.#stopped()) return;
      // Nothing could be deployed: every waiting request learns why now, never hangs.
      const coded = asSwarmBeeError(error);
      this.#lastFailure = coded;
      this.#machine.to('waiting');
      scheduler.failAll(coded);
      for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(coded);
      return;
    }
    if (this.#stopped()) {
      tearDown(deployment, new ClusterUnavailableError('the coordinator is shutting down'));
      return;
    }
    this.#current = deployment;
    this.#everDeployed = true;
    this.#lastFailure = undefined;
    const replayed = scheduler.active;
    const maxInFlight = this.#options.maxInFlight ?? deployment.maxInFlight;
    scheduler.attach(deployment.transport, {
      maxInFlight,
      limits: deployment.stages.flatMap((s) => (s.limits ? [{ stage: s.stage, ...s.limits }] : [])),
    });
    publishCoordinatorEvent(COORDINATOR_EVENTS.deployed, () => ({
      stages: [...deployment.stages],
      maxInFlight,
    }));
    // On disk before the deployment counts as ready: a coordinator killed right after
    // finds the plan when it starts again.
    await this.#options.plans
      .remember(candidates, deployment.plan)
      .catch((error: unknown) =>
        log(`could not remember the plan: ${asSwarmBeeError(error).message}`),
      );
    if (this.#stopped()) return;
    if (replacing || returning) {
      const event: RecoveryEvent = {
        reason,
        at: Date.now(),
        workers: deployment.plan.stages.map((s) => s.device),
        durationMs: performance.now() - requestedAt,
        replayed,
      };
      this.#recoveries.push(event);
      publishCoordinatorEvent(COORDINATOR_EVENTS.replayed, () => ({
        reason,
        workers: event.workers,
        durationMs: event.durationMs,
        replayed,
      }));
    }
    this.#machine.to('ready');
    for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve();
  }

  /** Read through a method: `stop()` may change the state while a replacement awaits. */
  #stopped(): boolean {
    return this.#machine.is('stopped');
  }

  async #bringUp(plan: Plan | PlanResult, candidates: string[]): Promise<Deployment> {
    let deployment: Deployment | undefined;
    deployment = await this.#options.bringUp(plan, candidates, (reason) => {
      if (deployment) this.fault(deployment, reason);
    });
    const deployed = deployment;
    deployed.stage0.once('close', () => this.fault(deployed, 'the data link to stage 0 closed'));
    return deployed;
  }
}
