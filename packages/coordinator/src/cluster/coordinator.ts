/**
 * The coordinator: accepts workers, plans and deploys the model over them, and
 * serves the API through the scheduler. One WebSocket port takes both workers'
 * control connections and the last stage's token stream; the API has its own port.
 */
import {
  asSwarmBeeError,
  ClusterUnavailableError,
  InvalidArgumentError,
  type Plan,
  type SwarmBeeError,
} from '@swarmbee/core';
import { loadTokenizer, type ModelDir, type ProgressFn, type Tokenizer } from '@swarmbee/model';
import {
  type Channel,
  type ChannelServer,
  connect,
  listen,
  type ServerTlsOptions,
} from '@swarmbee/protocol';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../api/server.js';
import { GenerationService, type ServiceLimits } from '../generation-service.js';
import { Metrics, type StageMetrics } from '../metrics.js';
import { Scheduler, type SchedulerOptions } from '../scheduler.js';
import { TokenIdsOnly } from '../token-ids-only.js';
import { type DeployedStage, type DeployOptions, deployPlan } from './deployer.js';
import { evenPlan } from './even-plan.js';
import { RemoteTransport } from './remote-transport.js';
import { ShardStore } from './shard-store.js';
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
  /** Require this bearer key on /v1 routes. Default: none. */
  apiKey?: string;
  /** Workers to wait for before deploying. Default 1. */
  minWorkers?: number;
  /** Where the coordinator keeps the shards it builds. */
  cacheDir: string;
  scheduler?: SchedulerOptions;
  limits?: Partial<ServiceLimits>;
  deploy?: DeployOptions;
  /** Chooses the plan for the workers at hand. Default: an even split in join order. */
  planner?: (model: ModelDir, workers: readonly WorkerLink[]) => Plan;
  /** How often to poll workers for their stage metrics, ms. Default 2000. */
  statsIntervalMs?: number;
  tls?: ServerTlsOptions;
  log?: (line: string) => void;
  progress?: ProgressFn;
}

export const DEFAULT_COORDINATOR_PORT = 7070;
export const DEFAULT_API_PORT = 8080;
export const DEFAULT_STATS_INTERVAL_MS = 2000;

type CoordinatorState = 'waiting' | 'deploying' | 'ready' | 'stopped';

export class Coordinator {
  readonly #options: CoordinatorOptions;
  readonly #log: (line: string) => void;
  readonly #workers = new Map<string, WorkerLink>();
  readonly #store: ShardStore;
  readonly #metrics: Metrics;
  #server?: ChannelServer;
  #api?: FastifyInstance;
  #apiUrl?: string;
  #tokenizer?: Tokenizer;
  #state: CoordinatorState = 'waiting';
  #plan?: Plan;
  #deployed: DeployedStage[] = [];
  #transport?: RemoteTransport;
  #scheduler?: Scheduler;
  #service?: GenerationService;
  #stage0?: Channel<'data'>;
  #stageMetrics: StageMetrics[] = [];
  #statsTimer?: NodeJS.Timeout;
  #nextWorkerId = 1;
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

  get plan(): Plan | undefined {
    return this.#plan;
  }

  get deployment(): readonly DeployedStage[] {
    return this.#deployed;
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

  get service(): GenerationService {
    if (!this.#service || this.#state !== 'ready') {
      throw new ClusterUnavailableError(
        this.#state === 'waiting'
          ? `waiting for workers: ${this.#workers.size} of ${this.#options.minWorkers ?? 1} have joined`
          : `the cluster is ${this.#state}; retry shortly`,
      );
    }
    return this.#service;
  }

  async start(): Promise<void> {
    const { model } = this.#options;
    this.#tokenizer = model.manifest.tokenizer ? await loadTokenizer(model) : undefined;
    this.#server = await listen(
      {
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
    this.#api = createApi({
      service: () => this.service,
      health: () => this.health(),
      metrics: this.#metrics,
      modelName: model.manifest.name,
      apiKey: this.#options.apiKey,
    });
    const host = this.#options.apiHost ?? '127.0.0.1';
    await this.#api.listen({ host, port: this.#options.apiPort ?? DEFAULT_API_PORT });
    const address = this.#api.server.address();
    const port = typeof address === 'object' && address ? address.port : this.#options.apiPort;
    this.#apiUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
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
      workers: [...this.#workers.keys()],
      stages: this.#deployed,
      model: this.#options.model.manifest.name,
    };
  }

  #acceptWorker(channel: Channel<'control'>): void {
    channel.once('message', (message) => {
      if (message.type !== 'register') {
        channel.close(1008, 'register first');
        return;
      }
      const existing = this.#workers.get(message.name);
      if (existing?.open) {
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
        if (!this.#transport?.onBatchError(error)) {
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
      this.#maybeDeploy();
    });
  }

  #acceptStage(channel: Channel<'data'>): void {
    channel.on('message', (message) => {
      if (message.type === 'tokens') this.#transport?.onTokens(message);
      else if (message.type === 'error') this.#transport?.onBatchError(message);
    });
  }

  #workerLeft(link: WorkerLink): void {
    if (this.#workers.get(link.name) === link) this.#workers.delete(link.name);
    this.#log(`worker ${link.name} left`);
    if (this.#state === 'stopped') return;
    if (this.#plan?.stages.some((s) => s.device === link.name)) {
      const error = new ClusterUnavailableError(
        `worker ${link.name}, which ran a stage, disconnected`,
      );
      this.#teardownPipeline(error);
      this.#maybeDeploy();
    }
  }

  #teardownPipeline(error: SwarmBeeError): void {
    this.#state = 'waiting';
    this.#transport?.failAll(error);
    this.#scheduler?.failAll(error);
    this.#stage0?.close(1001, 'pipeline torn down');
    this.#transport = undefined;
    this.#scheduler = undefined;
    this.#service = undefined;
    this.#stage0 = undefined;
    this.#plan = undefined;
    this.#deployed = [];
  }

  #maybeDeploy(): void {
    if (this.#state !== 'waiting' || this.#workers.size < (this.#options.minWorkers ?? 1)) return;
    this.#state = 'deploying';
    this.#deploy().catch((error) => {
      const coded = asSwarmBeeError(error);
      this.#log(`deployment failed: ${coded.code}: ${coded.message}`);
      this.#teardownPipeline(coded);
      for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(coded);
    });
  }

  async #deploy(): Promise<void> {
    const { model } = this.#options;
    // Ordered by name, so the same workers always get the same stages and a restarted
    // worker finds its shard in its cache.
    const workers = [...this.#workers.values()].sort((a, b) => a.name.localeCompare(b.name));
    const plan =
      this.#options.planner?.(model, workers) ??
      evenPlan(
        model.manifest.modelHash,
        model.manifest.config.nLayers,
        workers.map((w) => w.name),
      );
    this.#log(
      `deploying ${plan.stages.length} stage(s): ${plan.stages.map((s) => `${s.device}[${s.layerStart},${s.layerEnd})`).join(' -> ')}`,
    );
    const deployed = await deployPlan(plan, this.#workers, this.#store, this.workersUrl, {
      ...this.#options.deploy,
      log: this.#log,
      progress: this.#options.progress,
    });
    const first = this.#workers.get(plan.stages[0]!.device)!;
    this.#stage0 = await connect(first.dataUrl, {
      token: this.#options.token,
      role: 'coordinator',
      name: 'coordinator',
    });
    this.#transport = new RemoteTransport(this.#stage0);
    this.#scheduler = new Scheduler(this.#transport, {
      // One micro-batch per stage keeps every stage busy; more would split batches for nothing.
      maxInFlight: plan.stages.length,
      ...this.#options.scheduler,
    });
    const { config, name } = model.manifest;
    this.#service = new GenerationService(
      this.#scheduler,
      // A model without a tokenizer is still served, from token ids.
      this.#tokenizer ?? new TokenIdsOnly(config.vocabSize, name),
      { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
      this.#options.limits,
    );
    this.#plan = plan;
    this.#deployed = deployed;
    this.#state = 'ready';
    this.#startStatsPolling();
    this.#log('ready');
    for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve();
  }

  #startStatsPolling(): void {
    if (this.#statsTimer) return;
    let requestId = 1;
    this.#statsTimer = setInterval(() => {
      const stages = this.#plan?.stages ?? [];
      void Promise.all(
        stages.map(async (stage) => {
          const link = this.#workers.get(stage.device);
          if (!link?.open) return undefined;
          const reply = await link.channel
            .request(
              { type: 'stats.request', requestId: `stats-${requestId++}` },
              { timeoutMs: 5000 },
            )
            .catch(() => undefined);
          if (!reply) return undefined;
          const s = reply.stats;
          return {
            stage: stage.index,
            device: stage.device,
            forwards: s.forwards ?? 0,
            forwardMsTotal: s.forwardMsTotal ?? 0,
            queueDepth: s.queueDepth ?? 0,
            bytesSent: s.bytesSent ?? 0,
            idleShare: s.idleShare ?? 1,
          };
        }),
      ).then((results) => {
        this.#stageMetrics = results.filter((r): r is StageMetrics => r !== undefined);
      });
    }, this.#options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS);
    this.#statsTimer.unref();
  }

  /** Current stats of every connected worker, by name. */
  async workerStats(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    let requestId = 1;
    await Promise.all(
      [...this.#workers.values()].map(async (link) => {
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
    this.#teardownPipeline(error);
    this.#state = 'stopped';
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(error);
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    for (const link of this.#workers.values()) {
      if (options.stopWorkers) {
        try {
          link.channel.send({ type: 'stop' });
        } catch {
          // Already gone.
        }
      }
    }
    await this.#api?.close();
    await this.#server?.close();
  }
}
