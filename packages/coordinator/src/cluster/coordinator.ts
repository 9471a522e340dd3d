/**
 * The coordinator: accepts workers, profiles them, plans and deploys the model
 * over them, and serves the API through the scheduler. One WebSocket port takes
 * both workers' control connections and the last stage's token stream; the API
 * has its own port.
 *
 * When a worker that runs a stage is lost (killed, unplugged, or stalled past the
 * heartbeat timeout), or a link of the pipeline breaks, the coordinator re-plans on the
 * workers that remain, deploys the new plan, and replays every live sequence into it,
 * so response streams carry on; with greedy sampling the text is the same as without
 * the failure. If no plan fits any more, every waiting request fails at once with a
 * coded retryable error. A worker that joins or returns is taken back when that pays
 * (see PlanChoice). Reconfigurations run one at a time; requests for one that arrive
 * while another waits to start are merged into it.
 */
import {
  type ClusterProfile,
  ClusterUnavailableError,
  InvalidArgumentError,
  type Plan,
  processFaults,
  type StageTimelineEntry,
} from '@swarmbee/core';
import { Scheduler } from '@swarmbee/engine';
import { loadTokenizer, type ProgressFn } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import { type ChannelServer, DEFAULT_HEARTBEAT_TIMEOUT_MS, listen } from '@swarmbee/protocol';
import type { FinetuneEvent } from '@swarmbee/train';
import type { FastifyInstance } from 'fastify';
import { coordinatorDrift } from '../drift/drift-candidate.js';
import type { DriftMonitor, DriftOptions } from '../drift/drift-monitor.js';
import { COORDINATOR_EVENTS, publishCoordinatorEvent } from '../events.js';
import { GenerationService } from '../generation-service.js';
import { Metrics, type StageMetrics } from '../metrics.js';
import { TokenizerPool } from '../prompt/tokenizer-pool.js';
import { ServedModels } from '../served-models.js';
import { TokenIdsOnly } from '../token-ids-only.js';
import type { FederatedEvent, FederatedRequest } from '../training/federated-rounds.js';
import {
  type FederatedJobResult,
  type FinetuneJobRequest,
  type FinetuneJobResult,
  FinetuneJobs,
} from '../training/finetune-jobs.js';
import { ClusterProfiles } from './cluster-profiles.js';
import { serveCoordinatorApi } from './coordinator-api.js';
import {
  type CoordinatorOptions,
  checkCoordinatorOptions,
  DEFAULT_COORDINATOR_PORT,
  DEFAULT_STATS_INTERVAL_MS,
  type RecoveryEvent,
} from './coordinator-options.js';
import type { CoordinatorState } from './coordinator-state.js';
import type { DeployedStage } from './deployer.js';
import { bringUp, type Deployment } from './deployment.js';
import { Deployments } from './deployments.js';
import { type Membership, workerJoined, workerLeft } from './membership.js';
import { PlanChoice } from './plan-choice.js';
import { PlanMemory } from './plan-memory.js';
import type { PlanningOptions } from './planning.js';
import { profileSummary } from './profile-summary.js';
import { pollStages, stageTimelines, statsOf } from './queries.js';
import {
  DEFAULT_REPLAN_GAIN,
  DEFAULT_REPLAN_PAYBACK_MS,
  type ReplanPolicy,
} from './replan-policy.js';
import { ShardStore } from './shard-store.js';
import type { WorkerLink } from './worker-link.js';
import { NAME_PROBE_TIMEOUT_MS, WorkerRegistry } from './worker-registry.js';

export class Coordinator {
  readonly #options: CoordinatorOptions;
  /** The models requests may name: the base and `<model>:<adapter>` for each served adapter. */
  readonly models: ServedModels;
  readonly #log: (line: string) => void;
  readonly #registry: WorkerRegistry;
  readonly #store: ShardStore;
  readonly #scheduler: Scheduler;
  readonly #deployments: Deployments;
  readonly #plans: PlanChoice;
  readonly #profiles: ClusterProfiles;
  readonly #metrics: Metrics;
  #server?: ChannelServer;
  #api?: FastifyInstance;
  #apiUrl?: string;
  #service?: GenerationService;
  #prompts?: TokenizerPool;
  /** The stages' last polled counters, and the deployment they count for. */
  #stageMetrics: { deployment: Deployment | undefined; metrics: StageMetrics[] } = {
    deployment: undefined,
    metrics: [],
  };
  #statsPoller?: { stop: () => void };
  readonly #drift: DriftMonitor;
  readonly #finetune: FinetuneJobs;

  constructor(options: CoordinatorOptions) {
    checkCoordinatorOptions(options);
    this.#options = options;
    this.models = new ServedModels(
      options.model.manifest.name,
      options.adapters?.map((a) => a.name),
      options.adapter?.name,
    );
    this.#log = options.log ?? (() => {});
    const { model } = options;
    const context = options.planning?.workload?.contextTokens;
    const built = {
      ...(options.planning?.workload?.kvDtype
        ? { kvDtype: options.planning.workload.kvDtype }
        : {}),
      ...(options.adapter ? { adapter: options.adapter.adapter } : {}),
      ...(options.adapters?.length ? { adapters: options.adapters } : {}),
    };
    this.#store = new ShardStore(model, options.cacheDir, {
      ...built,
      ...(context === undefined ? {} : { context }),
    });
    this.#scheduler = new Scheduler(undefined, {
      maxSeqLen: this.#store.context,
      ...options.scheduler,
    });
    this.#registry = new WorkerRegistry(
      {
        joined: (link, message) =>
          workerJoined(link, message.cachedShards.length, this.#membership()),
        left: (link) => workerLeft(link, this.#deployments),
        log: this.#log,
      },
      Math.min(
        NAME_PROBE_TIMEOUT_MS,
        options.channel?.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
      ),
    );
    this.#profiles = new ClusterProfiles({
      model,
      // One-layer shards of the model's whole context: the profile's grid spans contexts
      // a deployment's shorter one would cut off (a plan reads it within its own).
      store: context === undefined ? this.#store : new ShardStore(model, options.cacheDir, built),
      workers: () => this.#openWorkers(),
      coordinatorUrl: () => this.workersUrl,
      coordinatorTiming: () => this.#scheduler.stepCost,
      token: options.token,
      linkShape: options.linkShape,
      clientTls: options.clientTls,
      deploy: options.deploy,
      log: this.#log,
      refused: (shortfall) => this.#plans.refusedProfile(shortfall),
      ...(options.progress ? { progress: options.progress } : {}),
    });
    const policy: ReplanPolicy = {
      gain: options.replanGain ?? DEFAULT_REPLAN_GAIN,
      paybackMs: options.replanPaybackMs ?? DEFAULT_REPLAN_PAYBACK_MS,
    };
    const plans = new PlanChoice({
      model,
      memory: new PlanMemory(options.cacheDir, model.manifest.modelHash),
      planning: () => this.#options.planning ?? {},
      profile: (names) => this.#profiles.covering(names),
      measure: () => this.profile(),
      policy,
      ...(options.plan ? { given: options.plan } : {}),
      log: this.#log,
    });
    this.#plans = plans;
    this.#deployments = new Deployments({
      scheduler: this.#scheduler,
      plans,
      connected: () => this.#registry.open(),
      bringUp: (plan, candidates, onFault) =>
        bringUp(plan, {
          workers: this.#registry.links,
          store: this.#store,
          coordinatorUrl: this.workersUrl,
          token: this.#options.token,
          linkShape: this.#options.linkShape,
          clientTls: this.#options.clientTls,
          candidates,
          onFault: (error) => onFault(`a stage reported ${error.code}: ${error.message}`),
          deploy: {
            ...this.#options.deploy,
            log: this.#log,
            ...(this.#options.progress ? { progress: this.#options.progress } : {}),
          },
        }),
      ...(options.scheduler?.maxInFlight === undefined
        ? {}
        : { maxInFlight: options.scheduler.maxInFlight }),
      log: this.#log,
    });
    this.#drift = coordinatorDrift(options.drift ?? {}, {
      model,
      planning: () => this.#options.planning ?? {},
      workers: () => this.#openWorkers().map((w) => w.name),
      plan: () => this.plan,
      profile: () => this.#profiles.current,
      adopt: async (profile, replan, reason) => {
        this.#profiles.adopt(profile);
        if (replan) await this.#deployments.request('replan', reason);
      },
      remeasure: (names) => this.#profiles.remeasure(names),
      policy,
      log: this.#log,
    });
    this.#finetune = new FinetuneJobs({
      model,
      cacheDir: options.cacheDir,
      workers: () => this.#registry.links,
      owners: () => this.#registry.owners(),
      deployments: this.#deployments,
      servesAdapter: options.adapter !== undefined,
    });
    this.#metrics = new Metrics({
      queued: () => (this.#service?.queued ?? 0) + this.#scheduler.waiting,
      active: () => this.#service?.active ?? 0,
      inFlight: () => this.#scheduler.inFlight,
      // A replaced deployment's counters are no stage's now: its stages count from zero.
      stages: () =>
        this.#stageMetrics.deployment === this.#deployments.current
          ? this.#stageMetrics.metrics
          : [],
      recoveries: () => this.#deployments.recoveries.length,
      processFaults,
      drift: () => this.#drift.latest,
      driftReplans: () => this.#drift.replans,
    });
  }

  /** The model a request naming none gets: `<model>:<adapter>` with an adapter merged. */
  get modelName(): string {
    return this.models.defaultId;
  }

  get state(): CoordinatorState {
    return this.#deployments.state;
  }

  get plan(): Plan | PlanResult | undefined {
    return this.#deployments.current?.plan;
  }

  get deployment(): readonly DeployedStage[] {
    return this.#deployments.current?.stages ?? [];
  }

  /** Every re-plan and recovery so far, oldest first. */
  get recoveries(): readonly RecoveryEvent[] {
    return this.#deployments.recoveries;
  }

  /** Changes the drift loop's settings while serving (e.g. `{ threshold: 0 }` turns it off). */
  configureDrift(options: DriftOptions): void {
    this.#drift.configure(options);
  }

  /** Where workers connect. */
  get workersUrl(): string {
    if (!this.#server) throw new ClusterUnavailableError('the coordinator is not listening');
    return this.#options.advertiseUrl ?? this.#server.url;
  }

  get apiUrl(): string {
    if (!this.#apiUrl) throw new ClusterUnavailableError('the API is not listening');
    return this.#apiUrl;
  }

  /** The completion service; while recovering it accepts requests and holds them. */
  get service(): GenerationService {
    const { state, everDeployed, lastFailure } = this.#deployments;
    if (!this.#service || (state !== 'ready' && state !== 'recovering')) {
      // A worker's refusal (MEMORY_SHORT, say) is why nothing serves: say so, not just "waiting".
      const why = lastFailure ? `; the last deployment failed: ${lastFailure.message}` : '';
      throw new ClusterUnavailableError(
        state === 'waiting'
          ? `waiting for workers: ${this.#openWorkers().length} connected, ${everDeployed ? 'and no plan fits them' : `${this.#options.minWorkers ?? 1} wanted`}${why}; retry shortly`
          : `the cluster is ${state}; retry shortly`,
      );
    }
    return this.#service;
  }

  async start(): Promise<void> {
    const { model } = this.#options;
    const { config } = model.manifest;
    const name = this.modelName;
    // A model without a tokenizer (an imported ONNX decoder) is still served, from token ids.
    const tokenizer = model.manifest.tokenizer
      ? await loadTokenizer(model)
      : new TokenIdsOnly(config.vocabSize, name);
    this.#prompts = await TokenizerPool.start(model, {
      threads: this.#options.tokenizerThreads,
      maxQueued: this.#options.limits?.maxQueued,
      log: this.#log,
    });
    this.#service = new GenerationService({
      scheduler: this.#scheduler,
      tokenizer,
      prompts: this.#prompts,
      model: {
        name,
        vocabSize: config.vocabSize,
        maxSeqLen: this.#store.context,
        served: this.models,
      },
      limits: this.#options.limits,
    });
    // Both ports are bound before anything is accepted: a port that cannot be had fails
    // the start with a coded error, and nothing has begun.
    try {
      const served = await serveCoordinatorApi(this.#options, {
        service: () => this.service,
        health: () => this.health(),
        metrics: this.#metrics,
        modelName: name,
        models: this.models,
        admin: {
          profile: (reprofile, progress) => this.profile({ reprofile, progress }),
          replan: (planning) => this.replan(planning),
          cluster: () => this.describe(),
          timeline: (since) => this.timeline(since),
          finetune: (request, onEvent, signal) => this.finetune(request, onEvent, signal),
          federated: (request, onEvent, signal) => this.federated(request, onEvent, signal),
        },
      });
      this.#api = served.api;
      this.#apiUrl = served.url;
      this.#server = await listen(
        {
          ...this.#options.channel,
          host: this.#options.listenHost ?? '127.0.0.1',
          port: this.#options.listenPort ?? DEFAULT_COORDINATOR_PORT,
          token: this.#options.token,
          tls: this.#options.tls,
        },
        (channel) => {
          if (channel.plane === 'control') this.#registry.accept(channel);
          else this.#deployments.acceptTokenLink(channel);
        },
      );
    } catch (error) {
      this.#deployments.stop(new ClusterUnavailableError('the coordinator could not start'));
      await this.#api?.close();
      await this.#prompts.close();
      throw error;
    }
    this.#statsPoller = pollStages(
      this.#options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS,
      () => this.#deployments.current,
      this.#registry.links,
      (metrics, deployment) => {
        if (deployment !== this.#deployments.current) return;
        this.#stageMetrics = { deployment, metrics };
        const transport = this.#deployments.current?.transport;
        if (transport && !transport.onSent)
          transport.onSent = (batch) => this.#drift.recordBatch(batch);
        this.#drift.observe(metrics);
      },
    );
    const listening = { workersUrl: this.workersUrl, apiUrl: this.#apiUrl };
    publishCoordinatorEvent(COORDINATOR_EVENTS.listening, () => listening);
  }

  /** Resolves once a plan is deployed and the API serves completions. */
  whenReady(): Promise<void> {
    return this.#deployments.whenReady();
  }

  health(): {
    ready: boolean;
    state: CoordinatorState;
    workers: string[];
    stages: DeployedStage[];
    model: string;
  } {
    return {
      ready: this.state === 'ready',
      state: this.state,
      workers: this.#openWorkers().map((w) => w.name),
      stages: [...this.deployment],
      model: this.modelName,
    };
  }

  /** The cluster as the API's /swarmbee/cluster shows it. */
  describe(): Record<string, unknown> {
    const { manifest } = this.#options.model;
    return {
      ...this.health(),
      /** Every model id requests may name: the base and each adapter served beside it. */
      models: this.models.ids,
      vocabSize: manifest.config.vocabSize,
      maxSeqLen: this.#store.context,
      devices: this.#openWorkers().map((w) => ({ name: w.name, dataUrl: w.dataUrl, ...w.device })),
      /** Data owners (`--train-data`): they train federated rounds, not stages. */
      dataOwners: this.#registry.owners().map((w) => w.name),
      plan: this.plan,
      profiled: this.#profiles.current?.createdAt,
      measured: this.#profiles.current && profileSummary(this.#profiles.current),
      recoveries: this.recoveries,
      drift: this.#drift.status(),
      processFaults: processFaults(),
    };
  }

  #openWorkers(): WorkerLink[] {
    return this.#registry.open();
  }

  #membership(): Membership {
    return {
      plans: this.#plans,
      deployments: this.#deployments,
      stopped: this.state === 'stopped',
      connected: this.#openWorkers().length,
      minWorkers: this.#options.minWorkers ?? 1,
    };
  }

  /** Measures the workers and links (compute profiles are cached by each worker). */
  profile(options: { reprofile?: boolean; progress?: ProgressFn } = {}): Promise<ClusterProfile> {
    return this.#profiles.measure(options);
  }

  /** Chooses a plan afresh (with new planning options, if given) and moves the running sequences onto it. */
  async replan(planning?: PlanningOptions): Promise<Plan | PlanResult> {
    const context = planning?.workload?.contextTokens;
    if (context !== undefined && context > this.#store.context)
      throw new InvalidArgumentError(
        `context_tokens ${context} passes the ${this.#store.context} tokens this coordinator's shards serve (--context); restart it with a larger --context`,
      );
    if (planning) this.#options.planning = { ...this.#options.planning, ...planning };
    await this.#deployments.request('replan', 're-plan requested');
    const deployment = this.#deployments.current;
    if (!deployment)
      throw new ClusterUnavailableError('no plan could be deployed; see the coordinator log');
    return deployment.plan;
  }

  /**
   * Each stage's micro-batches since `since` (epoch ms): arrival, compute and send
   * times, for a per-stage timeline. Clocks are the workers' own.
   */
  /**
   * Fine-tunes LoRA adapters over the deployed stages (see training/finetune-jobs.ts);
   * `signal` stops the job after its current step.
   */
  finetune(
    request: FinetuneJobRequest,
    onEvent: (event: FinetuneEvent) => void,
    signal?: AbortSignal,
  ): Promise<FinetuneJobResult> {
    return this.#finetune.run(request, onEvent, signal);
  }

  /** Federated rounds over the connected data owners (see training/federated-rounds.ts). */
  federated(
    request: FederatedRequest,
    onEvent: (event: FederatedEvent) => void,
    signal?: AbortSignal,
  ): Promise<FederatedJobResult> {
    return this.#finetune.federated(request, onEvent, signal);
  }

  timeline(since: number): Promise<StageTimelineEntry[]> {
    return stageTimelines(
      this.#deployments.current?.plan.stages ?? [],
      this.#registry.links,
      since,
    );
  }

  /** Current stats of every connected worker that answers, by name. */
  workerStats(): Promise<Record<string, Record<string, number>>> {
    return statsOf(this.#openWorkers(), this.#log);
  }

  async stop(options: { stopWorkers?: boolean } = {}): Promise<void> {
    if (this.state === 'stopped') return;
    this.#deployments.stop(new ClusterUnavailableError('the coordinator is shutting down'));
    this.#statsPoller?.stop();
    if (options.stopWorkers) {
      for (const link of this.#registry.links.values()) link.trySend({ type: 'stop' });
    }
    await this.#api?.close();
    await this.#server?.close();
    await this.#prompts?.close();
  }
}
