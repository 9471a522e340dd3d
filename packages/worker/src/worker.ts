/**
 * The stage worker daemon: joins a coordinator, receives its shard (or finds it in its disk
 * cache), loads it (`StageSlot`), and serves forward passes on the data plane. The control
 * connection is re-established when the coordinator goes away.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AllReduce,
  AuthFailedError,
  asSwarmBeeError,
  EngineClosedError,
  fromWire,
  InvalidArgumentError,
  type SwarmBeeError,
  settleWithin,
} from '@swarmbee/core';
import {
  answerProbe,
  type Channel,
  type ChannelServer,
  type ControlMessage,
  connect,
  connectShaped,
  listen,
  type TensorGroup,
} from '@swarmbee/protocol';
import { reachableHost } from './advertise.js';
import { deviceFacts } from './device.js';
import { sendErrorReply } from './error-reply.js';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';
import { FederatedOwner, ownedModel } from './federated-owner.js';
import { profileReply } from './profile-requests.js';
import { ShardCache } from './shard-cache.js';
import { ShardIntake } from './shard-intake.js';
import { StageSlot } from './stage-slot.js';
import { type WorkerState, WorkerStateMachine } from './state.js';
import { type TensorGroupJoinOptions, TensorGroups } from './tensor-groups.js';
import { TrainingHost } from './training-host.js';
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_REJOIN_DELAY_MS,
  engineOptions,
  MAX_REJOIN_DELAY_MS,
  type WorkerOptions,
} from './worker-options.js';
import { workerStats } from './worker-stats.js';

export class WorkerDaemon {
  readonly name: string;
  readonly #options: WorkerOptions;
  readonly #machine = new WorkerStateMachine();
  readonly #cache: ShardCache;
  readonly #log: (line: string) => void;
  #server?: ChannelServer;
  #control?: Channel<'control'>;
  readonly #slot: StageSlot;
  /** Why the worker stopped itself (a refusal it cannot retry), if it did. */
  #fatal?: SwarmBeeError;
  #ended!: () => void;
  /** Settles (never rejects) once stop() has finished. */
  readonly #hasEnded = new Promise<void>((resolve) => {
    this.#ended = resolve;
  });
  #stopped?: Promise<void>;
  /** Cuts short the pause between attempts to re-join. */
  readonly #stopping = new AbortController();
  readonly #groups: TensorGroups;
  readonly #shards: ShardIntake;
  readonly #training: TrainingHost;
  readonly #owner?: FederatedOwner;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.name = options.name ?? hostname();
    this.#groups = new TensorGroups({
      token: options.token,
      name: this.name,
      tls: options.tls?.client,
      channel: options.channel,
      linkShape: options.linkShape,
    });
    this.#cache = new ShardCache(options.cacheDir, {
      ...(options.partialShardMaxAgeMs === undefined
        ? {}
        : { partialMaxAgeMs: options.partialShardMaxAgeMs }),
      ...(options.openShardFile ? { openFile: options.openShardFile } : {}),
    });
    this.#shards = new ShardIntake({
      cache: this.#cache,
      reply: (message) => this.#control?.send(message),
      worker: this.name,
      flow: {
        pause: () => this.#control?.pause(),
        resume: () => this.#control?.resume(),
      },
      ...(options.maxPendingShardBytes === undefined
        ? {}
        : { maxPendingBytes: options.maxPendingShardBytes }),
      memory: () => ({
        releasedBytes: this.#slot.loadedBytes,
        limitBytes: options.memoryLimitBytes,
        kvBudgetBytes: options.kvBudgetBytes,
      }),
    });
    this.#training = new TrainingHost({
      worker: this.name,
      loaded: () => this.#slot.loadedShard,
      send: (message) => this.#control?.send(message),
      intraOpThreads: options.threads,
      heldBytes: () => this.#slot.loadedBytes,
      memoryLimitBytes: options.memoryLimitBytes,
      connect: (url) =>
        connectShaped(
          url,
          {
            ...options.channel,
            token: options.token,
            role: 'stage',
            name: `${this.name}/train`,
            tls: options.tls?.client,
          },
          options.linkShape,
        ),
    });
    if (options.dataOwner)
      this.#owner = new FederatedOwner(
        this.name,
        options.dataOwner,
        (message) => this.#control?.send(message),
        options.cacheDir,
        options.threads,
      );
    this.#slot = new StageSlot({
      name: this.name,
      options,
      cache: this.#cache,
      machine: this.#machine,
      closeTraining: () => this.#training.closeAll(),
      reportFailure: (batchId, error) => this.#sendError(error, batchId),
      joinGroup: (group, rank, signal) => this.joinTensorGroup(group, rank, { signal }),
      ready: (message) => this.#control?.send(message),
    });
    this.#log = options.log ?? (() => {});
    this.#machine.onChange((from, to) =>
      publishWorkerEvent(WORKER_EVENTS.state, () => ({ worker: this.name, from, to })),
    );
  }

  get state(): WorkerState {
    return this.#machine.state;
  }

  /** The data-plane URL other stages connect to. */
  get dataUrl(): string {
    if (!this.#server) throw new EngineClosedError('the worker is not listening yet');
    const host = this.#options.advertiseHost ?? reachableHost(this.#server.host);
    const scheme = this.#options.tls?.server ? 'wss' : 'ws';
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${this.#server.port}`;
  }

  /** Listens on the data plane and joins the coordinator; resolves once registered. */
  async start(): Promise<void> {
    this.#server = await listen(
      {
        ...this.#options.channel,
        host: this.#options.listenHost ?? '127.0.0.1',
        port: this.#options.listenPort ?? 0,
        token: this.#options.token,
        roles: ['stage', 'coordinator'],
        tls: this.#options.tls?.server,
      },
      (channel) => {
        if (channel.plane !== 'data') return;
        channel.on('message', (message) => {
          if (
            answerProbe(channel, message) ||
            this.#groups.route(channel, message) ||
            this.#training.route(message)
          )
            return;
          const runner = this.#slot.runner;
          if (runner && !this.#machine.is('draining', 'stopped')) runner.accept(message);
          else if (message.type === 'forward')
            this.#sendError(
              new EngineClosedError(`worker ${this.name} has no stage loaded`),
              message.batchId,
            );
        });
      },
    );
    this.#machine.to('joining');
    await this.#join();
    if (!this.#machine.is('draining', 'stopped'))
      publishWorkerEvent(WORKER_EVENTS.serving, () => ({
        worker: this.name,
        dataUrl: this.dataUrl,
      }));
  }

  async #join(): Promise<void> {
    let delay = this.#options.rejoinDelayMs ?? DEFAULT_REJOIN_DELAY_MS;
    while (this.#machine.is('joining')) {
      try {
        const control = await connect(this.#options.coordinatorUrl, {
          ...this.#options.channel,
          token: this.#options.token,
          role: 'worker',
          name: this.name,
          tls: this.#options.tls?.client,
        });
        await this.#register(control);
        return;
      } catch (error) {
        const coded = asSwarmBeeError(error);
        if (!coded.retryable) {
          // A wrong token, a name another worker holds: trying again cannot help.
          this.#log(
            coded.code === AuthFailedError.code
              ? `the coordinator refused this worker's token: ${coded.message}`
              : `the coordinator refused this worker: ${coded.code}: ${coded.message}`,
          );
          this.#fatal = coded;
          await this.stop();
          throw coded;
        }
        const delayMs = delay;
        publishWorkerEvent(WORKER_EVENTS.joinRetry, () => ({
          worker: this.name,
          coordinatorUrl: this.#options.coordinatorUrl,
          code: coded.code,
          delayMs,
        }));
        await sleep(delay, undefined, { signal: this.#stopping.signal }).catch(() => {});
        delay = Math.min(delay * 2, MAX_REJOIN_DELAY_MS);
      }
    }
  }

  async #register(control: Channel<'control'>): Promise<void> {
    this.#control = control;
    const cachedShards = await this.#cache.list();
    const workerId = await new Promise<string>((resolve, reject) => {
      control.on('message', (message) => {
        if (message.type === 'registered') resolve(message.workerId);
        else if (message.type === 'error' && this.#machine.is('joining')) reject(fromWire(message));
        else this.#onControl(message).catch((error) => this.#sendError(asSwarmBeeError(error)));
      });
      control.once('close', () =>
        reject(new EngineClosedError('the coordinator closed the connection while registering')),
      );
      try {
        control.send({
          type: 'register',
          name: this.name,
          device: deviceFacts(this.#options.executionProvider),
          dataUrl: this.dataUrl,
          cachedShards,
          ...(this.#options.dataOwner
            ? { dataOwner: ownedModel(this.#options.dataOwner.model.manifest) }
            : {}),
        });
      } catch (error) {
        reject(asSwarmBeeError(error));
      }
    });
    publishWorkerEvent(WORKER_EVENTS.registered, () => ({ worker: this.name, workerId }));
    this.#machine.to('idle');
    control.on('close', () => {
      if (this.#control !== control || this.#machine.is('stopped', 'draining')) return;
      publishWorkerEvent(WORKER_EVENTS.coordinatorLost, () => ({ worker: this.name }));
      this.#control = undefined;
      // Shards it was sending wait on disk, verified chunk by chunk, for the next offer.
      this.#shards.reset();
      void this.#cache.suspendAll();
      void this.#training.closeAll();
      this.#machine.to('joining');
      this.#join().catch((error: unknown) =>
        this.#log(`stopped re-joining: ${asSwarmBeeError(error).message}`),
      );
    });
  }

  async #onControl(message: ControlMessage): Promise<void> {
    switch (message.type) {
      case 'shard.offer':
        return this.#shards.offer(message);
      case 'shard.chunk':
        return this.#shards.chunk(message);
      case 'shard.done':
        return this.#shards.done(message);
      case 'stage.load':
        return this.#slot.load(message);
      case 'train.load':
      case 'train.call':
        return this.#training.handle(message);
      case 'fed.round':
        if (!this.#owner)
          throw new InvalidArgumentError(
            `worker ${this.name} holds no training data (--train-data)`,
          );
        return this.#owner.handle(message);
      case 'profile.request': {
        const reply = await profileReply(message, {
          name: this.name,
          token: this.#options.token,
          tls: this.#options.tls?.client,
          linkShape: this.#options.linkShape,
          cacheDir: this.#options.cacheDir,
          shards: this.#cache,
          engine: engineOptions(this.#options),
          emulation: this.#options.emulation,
          memoryLimitBytes: this.#options.memoryLimitBytes,
          ...(this.#slot.runner ? { timeline: this.#slot.runner.timeline } : {}),
          log: this.#log,
        });
        this.#control?.send(reply);
        return;
      }
      case 'stats.request':
        this.#control?.send({ type: 'stats', requestId: message.requestId, stats: this.stats() });
        return;
      case 'drain':
        await this.drain();
        return;
      case 'stop':
        await this.stop();
        return;
      default:
        return;
    }
  }

  #sendError(error: SwarmBeeError, batchId?: number): void {
    const control = this.#control;
    sendErrorReply(
      control && ((message) => control.send(message)),
      error,
      batchId === undefined ? {} : { batchId },
      error.stage ?? this.#slot.runner?.stage,
    );
  }

  stats(): Record<string, number> {
    return workerStats(this.#shards.counters, this.#slot.runner);
  }

  /** Finishes the work in hand and accepts no more. */
  async drain(): Promise<void> {
    if (this.#machine.is('draining', 'stopped')) return;
    this.#machine.to('draining');
    await this.#slot.runner?.idle();
  }

  /**
   * Joins tensor-parallel group `group` as member `rank` and resolves with the AllReduce its
   * stage engine sums partials with, once the member's links are open (the members of
   * higher rank dial this worker's data-plane URL, `group.members[rank]`).
   */
  joinTensorGroup(
    group: TensorGroup,
    rank: number,
    options?: TensorGroupJoinOptions,
  ): Promise<AllReduce> {
    return this.#groups.join(group, rank, options);
  }

  /** Leaves the coordinator, drains, unloads and stops listening. Safe to call more than once. */
  stop(): Promise<void> {
    this.#stopping.abort();
    this.#stopped ??= (async () => {
      const draining = !this.#machine.is('stopped', 'draining', 'starting');
      if (draining) this.#machine.to('draining');
      // Leave the cluster first, so the coordinator plans around this worker at once
      // instead of sending it a stage while it finishes the work in hand.
      this.#control?.close(1001, 'worker stopping');
      // The work in hand gets the drain timeout; a stage that cannot finish (a downstream
      // that stopped reading, an engine that does not answer) must not keep the process.
      const drainMs = this.#options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
      if (draining) await settleWithin(this.#slot.runner?.idle(), drainMs);
      this.#machine.to('stopped');
      await settleWithin(this.#training.closeAll(), drainMs);
      await settleWithin(this.#slot.close(), drainMs);
      await settleWithin(this.#groups.close(), drainMs);
      await this.#server?.close({ signal: AbortSignal.timeout(drainMs) });
      this.#ended();
    })();
    return this.#stopped;
  }

  /**
   * Resolves once the worker has stopped — asked to, or told to by the coordinator — and
   * rejects with the refusal when it stopped itself because re-joining could not help (a
   * wrong token, a name another connected worker holds).
   */
  async whenStopped(): Promise<void> {
    await this.#hasEnded;
    if (this.#fatal) throw this.#fatal;
  }
}
