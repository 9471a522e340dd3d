/**
 * The one stage a worker serves at a time. Loading a stage checks that it fits the worker's
 * memory before anything is unloaded, closes the stage before (and the training sessions on
 * its layers), verifies the shard's bytes on disk, starts it, and records what it holds; a
 * newer `stage.load` ends one still loading (a member waiting for a group that a failed
 * deployment left short), quietly: its deployment is gone.
 */
import {
  AbortedError,
  type AllReduce,
  EngineClosedError,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { StageLoadMessage, StageReadyMessage, TensorGroup } from '@swarmbee/protocol';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';
import { checkMemoryFit, kvBudgetOf, stageMemoryBytes } from './memory-fit.js';
import type { ShardCache } from './shard-cache.js';
import type { StageRunner } from './stage-runner.js';
import { startStage } from './stage-start.js';
import type { WorkerStateMachine } from './state.js';
import type { LoadedShard } from './training-host.js';
import type { WorkerOptions } from './worker-options.js';

export interface StageSlotOptions {
  /** The worker's name, for its messages and events. */
  name: string;
  options: WorkerOptions;
  cache: ShardCache;
  /** The worker's state: loading, then ready (or back to idle when a load fails). */
  machine: WorkerStateMachine;
  /** Closes the training sessions on the stage being replaced. */
  closeTraining: () => Promise<void>;
  /** Reports a batch the stage could not run. */
  reportFailure: (batchId: number, error: SwarmBeeError) => void;
  /** Joins a tensor-parallel group (for a `stage.load` with `tensor`). */
  joinGroup: (group: TensorGroup, rank: number, signal: AbortSignal) => Promise<AllReduce>;
  /** Tells the coordinator the stage is ready. */
  ready: (message: StageReadyMessage) => void;
}

export class StageSlot {
  readonly #o: StageSlotOptions;
  #runner?: StageRunner;
  /** Memory the loaded stage was admitted with (shard + KV budget + runtime), bytes; 0 when none. */
  #loadedBytes = 0;
  /** The loaded stage's shard, for training on its layers. */
  #loadedShard?: LoadedShard;
  /** Ends the stage.load in progress, when a newer one comes. */
  #loading?: AbortController;

  constructor(options: StageSlotOptions) {
    this.#o = options;
  }

  /** The stage being served, if one is loaded. */
  get runner(): StageRunner | undefined {
    return this.#runner;
  }

  get loadedBytes(): number {
    return this.#loadedBytes;
  }

  get loadedShard(): LoadedShard | undefined {
    return this.#loadedShard;
  }

  /** Loads the stage `load` names in place of the one before (see the module comment). */
  async load(load: StageLoadMessage): Promise<void> {
    const { name, options, cache, machine } = this.#o;
    if (machine.is('draining', 'stopped'))
      throw new EngineClosedError(`worker ${name} is shutting down: it loads no stage`);
    this.#loading?.abort(new AbortedError('a newer stage.load replaced this one'));
    const loading = new AbortController();
    this.#loading = loading;
    const offer = await cache.offerOf(load.shardId);
    if (!offer)
      throw new EngineClosedError(
        `shard ${load.shardId.slice(0, 12)} is not in this worker's cache`,
      );
    // Before anything is unloaded or loaded: a stage that cannot fit is refused whole.
    const stage = {
      shardBytes: offer.bytes,
      kvBudgetBytes: kvBudgetOf(options.kvBudgetBytes, load.options.kvBudgetBytes),
    };
    checkMemoryFit(name, load.shardId, stage, {
      releasedBytes: this.#loadedBytes,
      limitBytes: options.memoryLimitBytes,
      ownKvBudgetBytes: options.kvBudgetBytes,
    });
    machine.to('loading');
    const begun = performance.now();
    await this.#unload();
    let runner: StageRunner | undefined;
    try {
      // Verify the bytes on disk before handing them to onnxruntime.
      const path = await cache.verify(offer);
      const started = await startStage(load, path, {
        name,
        options,
        reportFailure: this.#o.reportFailure,
        joinGroup: (group, rank) => this.#o.joinGroup(group, rank, loading.signal),
      });
      runner = started.runner;
      loading.signal.throwIfAborted();
      this.#runner = runner;
      this.#loadedBytes = stageMemoryBytes(stage);
      this.#loadedShard = {
        stage: load.stage,
        layerStart: load.layerStart,
        layerEnd: load.layerEnd,
        shardId: load.shardId,
        path,
        bytes: offer.bytes,
      };
      machine.to('ready');
      const loadMs = performance.now() - begun;
      publishWorkerEvent(WORKER_EVENTS.stageReady, () => ({
        worker: name,
        stage: load.stage,
        layerStart: load.layerStart,
        layerEnd: load.layerEnd,
        loadMs,
        nextUrl: started.nextUrl,
      }));
      this.#o.ready({ type: 'stage.ready', stage: load.stage, loadMs, limits: started.limits });
    } catch (error) {
      if (runner && this.#runner === runner) {
        this.#runner = undefined;
        this.#loadedBytes = 0;
      }
      await runner?.close().catch(() => {});
      if (loading.signal.aborted) return;
      if (machine.is('loading')) machine.to('idle');
      throw error;
    } finally {
      if (this.#loading === loading) this.#loading = undefined;
    }
  }

  /** Closes the stage served, if any. */
  async close(): Promise<void> {
    const runner = this.#runner;
    this.#runner = undefined;
    this.#loadedBytes = 0;
    await runner?.close();
  }

  /** The stage before a load: forgotten first, then its training sessions and it closed. */
  async #unload(): Promise<void> {
    const previous = this.#runner;
    this.#runner = undefined;
    this.#loadedBytes = 0;
    this.#loadedShard = undefined;
    await this.#o.closeTraining();
    await previous?.close().catch(() => {});
  }
}
