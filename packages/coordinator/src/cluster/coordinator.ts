/**
 * The coordinator: accepts workers, profiles them, plans and deploys the model
 * over them, and serves the API through the scheduler. One WebSocket port takes
 * both workers' control connections and the last stage's token stream; the API
 * has its own port.
 *
 * When a worker that runs a stage is lost (killed, unplugged, or stalled past the
 * heartbeat timeout) the coordinator re-plans on the workers that remain, deploys
 * the new plan, and replays every live sequence into it, so response streams carry
 * on; with greedy sampling the text is the same as without the failure. If no plan
 * fits any more, every waiting request fails at once with a coded error.
 */
import {
  asSwarmBeeError,
  type ClusterProfile,
  ClusterUnavailableError,
  InvalidArgumentError,
  type Plan,
  type StageTimelineEntry,
  type SwarmBeeError,
} from '@swarmbee/core';
import { loadTokenizer, type ModelDir, type ProgressFn } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import {
  answerProbe,
  type Channel,
  type ChannelOptions,
  type ChannelServer,
  type ClientTlsOptions,
  type LinkShape,
  listen,
  type ServerTlsOptions,
} from '@swarmbee/protocol';
import type { FastifyInstance } from 'fastify';
import type { IntakeTimeouts } from '../api/intake.js';
import { createApi, listenApi } from '../api/server.js';
import { GenerationService, type ServiceLimits } from '../generation-service.js';
import { Metrics, type StageMetrics } from '../metrics.js';
import { TokenizerPool } from '../prompt/tokenizer-pool.js';
import { Scheduler, type SchedulerOptions } from '../scheduler.js';
import { TokenIdsOnly } from '../token-ids-only.js';
import type { DeployedStage, DeployOptions } from './deployer.js';
import { bringUp, type Deployment, profileFor, tearDown } from './deployment.js';
import { choosePlan, needsProfile, type PlanningOptions } from './planning.js';
import { profileCluster } from './profiler.js';
import { ShardStore } from './shard-store.js';
import { pollStageMetrics } from './stage-metrics.js';
import { WorkerLink } from './worker-link.js';

export interface CoordinatorOptions {
  model: ModelDir;
  /** Cluster join token workers must prove they hold. */
  token: string;
  /** Worker-facing WebSocket address. Default 127.0.0.1:7070 (use 0.0.0.0 for a LAN). */
  listenHost?: string;
  listenPort?: number;
  /** URL workers use to reach this coordinator, when it differs from the listen address. */
  advertiseUrl?: string;
  /** HTTP API address. Default 127.0.0.1:8080. */
  apiHost?: string;
  apiPort?: number;
  /** Require this bearer key on /v1 and /swarmbee routes. Default: none. */
  apiKey?: string;
  /** Workers to wait for before the first deployment. Default 1. */
  minWorkers?: number;
  /** Where the coordinator keeps the shards it builds. */
  cacheDir: string;
  scheduler?: SchedulerOptions;
  limits?: Partial<ServiceLimits>;
  /** Threads that tokenize prompts off the event loop. Default 2. */
  tokenizerThreads?: number;
  /** How long API clients may take to send headers and whole requests. Defaults: the API's. */
  http?: IntakeTimeouts;
  deploy?: DeployOptions;
  /** How plans are chosen. Default: profile the workers, then the DP for throughput. */
  planning?: PlanningOptions;
  /** Heartbeats, frame and queue limits of every connection. Defaults: the protocol's. */
  channel?: ChannelOptions;
  /** Benchmarks and tests only: shape the coordinator's outgoing data-plane links. */
  linkShape?: LinkShape;
  /** How often to poll workers for their stage metrics, ms. Default 2000. */
  statsIntervalMs?: number;
  /** Serve wss:// to workers and https:// for the API with this certificate. Default: plain. */
  tls?: ServerTlsOptions;
  /** How to check workers' wss:// certificates (a cluster CA). Default: the system's CAs. */
  clientTls?: ClientTlsOptions;
  log?: (line: string) => void;
  progress?: ProgressFn;
}

export const DEFAULT_COORDINATOR_PORT = 7070;
export const DEFAULT_API_PORT = 8080;
export const DEFAULT_STATS_INTERVAL_MS = 2000;
/** Attempts to bring up a plan when workers keep failing during deployment. */
const MAX_DEPLOY_ATTEMPTS = 3;

/** `waiting` for workers, `deploying` the first plan, `ready`, `recovering` (re-planning with requests held), `stopped`. */
export type CoordinatorState = 'waiting' | 'deploying' | 'ready' | 'recovering' | 'stopped';

export interface RecoveryEvent {
  reason: string;
  /** From the loss (or re-plan request) to the new pipeline accepting batches. */
  durationMs: number;
  /** Sequences replayed into the new pipeline. */
  replayed: number;
}

export class Coordinator {
  readonly #options: CoordinatorOptions;
  readonly #log: (line: string) => void;
  readonly #workers = new Map<string, WorkerLink>();
  readonly #store: ShardStore;
  readonly #metrics: Metrics;
  readonly #recoveries: RecoveryEvent[] = [];
  #server?: ChannelServer;
  #api?: FastifyInstance;
  #apiUrl?: string;
  #state: CoordinatorState = 'waiting';
  #profile?: ClusterProfile;
  #deployment?: Deployment;
  #scheduler?: Scheduler;
  #service?: GenerationService;
  #prompts?: TokenizerPool;
  #stageMetrics: StageMetrics[] = [];
  #statsTimer?: NodeJS.Timeout;
  #nextWorkerId = 1;
  /** Reconfigurations run one at a time, in order. */
  #reconfiguring: Promise<void> = Promise.resolve();
  #readyWaiters: { resolve: () => void; reject: (e: SwarmBeeError) => void }[] = [];

  constructor(options: CoordinatorOptions) {
    if ((options.minWorkers ?? 1) < 1)
      throw new InvalidArgumentError('--min-workers must be at least 1');
    this.#options = options;
    this.#log = options.log ?? (() => {});
    this.#store = new ShardStore(options.model, options.cacheDir);
    this.#metrics = new Metrics({
      queued: () => this.#service?.queued ?? 0,
      active: () => this.#service?.active ?? 0,
      inFlight: () => this.#scheduler?.inFlight ?? 0,
      stages: () => this.#stageMetrics,
    });
  }

  get state(): CoordinatorState {
    return this.#state;
  }

  get plan(): Plan | PlanResult | undefined {
    return this.#deployment?.plan;
  }

  get deployment(): readonly DeployedStage[] {
    return this.#deployment?.stages ?? [];
  }

  /** Every re-plan and recovery so far, oldest first. */
  get recoveries(): readonly RecoveryEvent[] {
    return this.#recoveries;
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
    if (!this.#service || (this.#state !== 'ready' && this.#state !== 'recovering')) {
      throw new ClusterUnavailableError(
        this.#state === 'waiting'
          ? `waiting for workers: ${this.#openWorkers().length} of ${this.#options.minWorkers ?? 1} have joined`
          : `the cluster is ${this.#state}; retry shortly`,
      );
    }
    return this.#service;
  }

  async start(): Promise<void> {
    const { model } = this.#options;
    const { config, name } = model.manifest;
    // A model without a tokenizer (an imported ONNX decoder) is still served, from token ids.
    const tokenizer = model.manifest.tokenizer
      ? await loadTokenizer(model)
      : new TokenIdsOnly(config.vocabSize, name);
    this.#prompts = await TokenizerPool.start(model, {
      threads: this.#options.tokenizerThreads,
      maxQueued: this.#options.limits?.maxQueued,
      log: this.#log,
    });
    this.#scheduler = new Scheduler(undefined, this.#options.scheduler);
    this.#service = new GenerationService({
      scheduler: this.#scheduler,
      tokenizer,
      prompts: this.#prompts,
      model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
      limits: this.#options.limits,
    });
    // Both ports are bound before anything is accepted: a port that cannot be had fails
    // the start with a coded error, and nothing has begun.
    try {
      this.#api = createApi({
        service: () => this.service,
        health: () => this.health(),
        metrics: this.#metrics,
        modelName: name,
        apiKey: this.#options.apiKey,
        ...(this.#options.tls ? { tls: this.#options.tls } : {}),
        ...this.#options.http,
        bodyLimitBytes: this.#options.limits?.maxBodyBytes,
        admin: {
          profile: (reprofile, progress) => this.profile({ reprofile, progress }),
          replan: (planning) => this.replan(planning),
          cluster: () => this.describe(),
          timeline: (since) => this.timeline(since),
        },
      });
      this.#apiUrl = await listenApi(this.#api, {
        host: this.#options.apiHost ?? '127.0.0.1',
        port: this.#options.apiPort ?? DEFAULT_API_PORT,
        tls: this.#options.tls !== undefined,
      });
      this.#server = await listen(
        {
          ...this.#options.channel,
          host: this.#options.listenHost ?? '127.0.0.1',
          port: this.#options.listenPort ?? DEFAULT_COORDINATOR_PORT,
          token: this.#options.token,
          tls: this.#options.tls,
        },
        (channel) => {
          if (channel.plane === 'control') this.#acceptWorker(channel);
          else this.#acceptStage(channel);
        },
      );
    } catch (error) {
      this.#state = 'stopped';
      await this.#api?.close();
      await this.#prompts.close();
      throw error;
    }
    this.#log(`listening for workers on ${this.workersUrl}; API on ${this.#apiUrl}`);
  }

  /** Resolves once a plan is deployed and the API serves completions. */
  whenReady(): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  health(): {
    ready: boolean;
    state: CoordinatorState;
    workers: string[];
    stages: DeployedStage[];
    model: string;
  } {
    return {
      ready: this.#state === 'ready',
      state: this.#state,
      workers: this.#openWorkers().map((w) => w.name),
      stages: [...this.deployment],
      model: this.#options.model.manifest.name,
    };
  }

  /** The cluster as the API's /swarmbee/cluster shows it. */
  describe(): Record<string, unknown> {
    const { manifest } = this.#options.model;
    return {
      ...this.health(),
      vocabSize: manifest.config.vocabSize,
      maxSeqLen: manifest.config.maxSeqLen,
      devices: this.#openWorkers().map((w) => ({ name: w.name, dataUrl: w.dataUrl, ...w.device })),
      plan: this.plan,
      profiled: this.#profile?.createdAt,
      recoveries: this.#recoveries,
    };
  }

  #openWorkers(): WorkerLink[] {
    return [...this.#workers.values()]
      .filter((w) => w.open)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  #acceptWorker(channel: Channel<'control'>): void {
    channel.once('message', (message) => {
      if (message.type !== 'register') {
        channel.close(1008, 'register first');
        return;
      }
      if (this.#workers.get(message.name)?.open) {
        channel.send({
          type: 'error',
          code: InvalidArgumentError.code,
          message: `a worker named ${message.name} is already connected`,
          retryable: true,
        });
        channel.close(1008, 'duplicate worker name');
        return;
      }
      const link = new WorkerLink(
        `w${this.#nextWorkerId++}`,
        message.name,
        message.device,
        message.dataUrl,
        channel,
      );
      link.onBatchError = (error) => {
        if (!this.#deployment?.transport.onBatchError(error)) {
          this.#log(
            `stage ${error.stage ?? '?'} on ${link.name} failed batch ${error.batchId}, which this coordinator did not send: ${error.code}: ${error.message}`,
          );
        }
      };
      this.#workers.set(link.name, link);
      channel.send({ type: 'registered', workerId: link.id });
      this.#log(
        `worker ${link.name} joined (${message.device.arch}, ${message.device.cpus} cpus, data ${message.dataUrl}, ${message.cachedShards.length} cached shards)`,
      );
      channel.on('close', () => this.#workerLeft(link));
      if (
        this.#state === 'waiting' &&
        !this.#deployment &&
        this.#openWorkers().length >= (this.#options.minWorkers ?? 1)
      ) {
        this.#reconfigure('deploy', 'deploying');
      }
    });
  }

  #acceptStage(channel: Channel<'data'>): void {
    channel.on('message', (message) => {
      if (answerProbe(channel, message)) return;
      if (message.type === 'tokens') this.#deployment?.transport.onTokens(message);
      else if (message.type === 'error') this.#deployment?.transport.onBatchError(message);
    });
  }

  #workerLeft(link: WorkerLink): void {
    if (this.#workers.get(link.name) === link) this.#workers.delete(link.name);
    this.#log(`worker ${link.name} left`);
    if (this.#state === 'stopped') return;
    if (this.#deployment?.plan.stages.some((s) => s.device === link.name))
      this.#reconfigure(`worker ${link.name}, which ran a stage, was lost`, 'recovering');
  }

  /** Measures the workers and links (compute profiles are cached by each worker). */
  async profile(
    options: { reprofile?: boolean; progress?: ProgressFn } = {},
  ): Promise<ClusterProfile> {
    const workers = this.#openWorkers();
    if (workers.length === 0) throw new ClusterUnavailableError('no workers have joined yet');
    const progress = options.progress ?? this.#options.progress;
    this.#profile = await profileCluster({
      model: this.#options.model,
      workers,
      store: this.#store,
      coordinatorUrl: this.workersUrl,
      token: this.#options.token,
      reprofile: options.reprofile,
      linkShape: this.#options.linkShape,
      clientTls: this.#options.clientTls,
      deploy: this.#options.deploy,
      log: this.#log,
      ...(progress ? { progress } : {}),
    });
    return this.#profile;
  }

  /** Chooses a plan again (with new planning options, if given) and moves the running sequences onto it. */
  async replan(planning?: PlanningOptions): Promise<Plan | PlanResult> {
    if (planning) this.#options.planning = { ...this.#options.planning, ...planning };
    await this.#reconfigure('re-plan requested', this.#deployment ? 'recovering' : 'deploying');
    if (!this.#deployment)
      throw new ClusterUnavailableError('no plan could be deployed; see the coordinator log');
    return this.#deployment.plan;
  }

  /**
   * Brings up a plan for the workers connected now, replaying live sequences into it.
   * Runs after any reconfiguration already under way; resolves when done (or failed).
   */
  #reconfigure(reason: string, state: 'deploying' | 'recovering'): Promise<void> {
    this.#reconfiguring = this.#reconfiguring.then(() => this.#bringUp(reason, state));
    return this.#reconfiguring;
  }

  async #bringUp(reason: string, state: 'deploying' | 'recovering'): Promise<void> {
    if (this.#state === 'stopped') return;
    const started = performance.now();
    const scheduler = this.#scheduler!;
    this.#state = state;
    this.#log(`${reason}: planning`);
    if (this.#deployment) {
      scheduler.detach();
      tearDown(this.#deployment, new ClusterUnavailableError(reason, { retryable: true }));
      this.#deployment = undefined;
    }
    let failure: SwarmBeeError | undefined;
    for (let attempt = 1; attempt <= MAX_DEPLOY_ATTEMPTS; attempt++) {
      const workers = this.#openWorkers();
      if (workers.length === 0) {
        failure = new ClusterUnavailableError(`${reason}, and no worker is left to run the model`);
        break;
      }
      try {
        const planning = this.#options.planning ?? {};
        let profile = profileFor(this.#profile, new Set(workers.map((w) => w.name)));
        if (!profile && needsProfile(planning)) profile = await this.profile();
        const plan = choosePlan(
          this.#options.model,
          workers.map((w) => w.name),
          planning,
          profile,
        );
        this.#log(
          `deploying ${plan.stages.length} stage(s): ${plan.stages.map((s) => `${s.device}[${s.layerStart},${s.layerEnd})`).join(' -> ')}`,
        );
        const deployment = await bringUp(plan, {
          workers: this.#workers,
          store: this.#store,
          coordinatorUrl: this.workersUrl,
          token: this.#options.token,
          linkShape: this.#options.linkShape,
          clientTls: this.#options.clientTls,
          deploy: {
            ...this.#options.deploy,
            log: this.#log,
            ...(this.#options.progress ? { progress: this.#options.progress } : {}),
          },
        });
        deployment.stage0.once('close', () => {
          if (this.#deployment === deployment)
            this.#reconfigure('the data link to stage 0 closed', 'recovering');
        });
        this.#deployment = deployment;
        const replayed = scheduler.active;
        scheduler.attach(deployment.transport, {
          maxInFlight: this.#options.scheduler?.maxInFlight ?? deployment.maxInFlight,
        });
        this.#state = 'ready';
        this.#startStatsPolling();
        if (state === 'recovering') {
          const event = { reason, durationMs: performance.now() - started, replayed };
          this.#recoveries.push(event);
          this.#log(
            `recovered in ${event.durationMs.toFixed(0)} ms, replaying ${replayed} sequence(s)`,
          );
        }
        this.#log('ready');
        for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve();
        return;
      } catch (error) {
        failure = asSwarmBeeError(error);
        this.#log(`deployment attempt ${attempt} failed: ${failure.code}: ${failure.message}`);
        scheduler.detach();
        if (!failure.retryable) break;
      }
    }
    // Nothing could be deployed: every waiting request learns why now, never hangs.
    const error = failure ?? new ClusterUnavailableError(reason);
    this.#state = 'waiting';
    scheduler.failAll(error);
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
  }

  #startStatsPolling(): void {
    if (this.#statsTimer) return;
    this.#statsTimer = setInterval(() => {
      const stages = this.#deployment?.plan.stages ?? [];
      void pollStageMetrics(stages, this.#workers).then((metrics) => {
        this.#stageMetrics = metrics;
      });
    }, this.#options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS);
    this.#statsTimer.unref();
  }

  /**
   * Each stage's micro-batches since `since` (epoch ms): arrival, compute and send
   * times, for a per-stage timeline. Clocks are the workers' own.
   */
  async timeline(since: number): Promise<StageTimelineEntry[]> {
    const stages = this.#deployment?.plan.stages ?? [];
    return Promise.all(
      stages.map(async (stage) => {
        const link = this.#workers.get(stage.device);
        if (!link?.open) return { stage: stage.index, device: stage.device, events: [] };
        const reply = await link.channel.request(
          {
            type: 'profile.request',
            requestId: `timeline-${stage.index}-${Date.now()}`,
            kind: 'timeline',
            params: { since },
          },
          { timeoutMs: 10_000 },
        );
        return {
          stage: stage.index,
          device: stage.device,
          events: (reply.result as { events: StageTimelineEntry['events'] }).events,
        };
      }),
    );
  }

  /** Current stats of every connected worker, by name. */
  async workerStats(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    let requestId = 1;
    await Promise.all(
      this.#openWorkers().map(async (link) => {
        const reply = await link.channel.request(
          { type: 'stats.request', requestId: `adhoc-${requestId++}` },
          { timeoutMs: 5000 },
        );
        out[link.name] = reply.stats;
      }),
    );
    return out;
  }

  async stop(options: { stopWorkers?: boolean } = {}): Promise<void> {
    if (this.#state === 'stopped') return;
    const error = new ClusterUnavailableError('the coordinator is shutting down');
    this.#state = 'stopped';
    this.#scheduler?.detach();
    this.#scheduler?.failAll(error);
    if (this.#deployment) tearDown(this.#deployment, error);
    this.#deployment = undefined;
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    if (options.stopWorkers) {
      for (const link of this.#workers.values()) {
        try {
          link.channel.send({ type: 'stop' });
        } catch {
          // Already gone.
        }
      }
    }
    await this.#api?.close();
    await this.#server?.close();
    await this.#prompts?.close();
  }
}
