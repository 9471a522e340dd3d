/**
 * A TrainingStage on a worker: each method is one `train.call` over the worker's control
 * link, answered by its `train.result` (or its coded error). The stage trains LoRA adapters
 * on the layers of the inference shard the worker serves; a lost link fails every call
 * in flight with the link's error, which a fine-tuning run may recover from.
 */
import { EngineFailedError } from '@swarmbee/core';
import type {
  TrainingBackward,
  TrainingForward,
  TrainingMicroBatch,
  TrainingStage,
  TrainingStageInfo,
  TrainingStageState,
  TrainingStageStats,
  TrainingUpdate,
} from '@swarmbee/engine';
import type { TrainingStageGraphs } from '@swarmbee/model';
import {
  arraysFromWire,
  arraysToWire,
  batchToWire,
  graphsToWire,
  readArray,
  stateFromWire,
  stateToWire,
  type TrainingCall,
  type TrainingResult,
  toWireArray,
} from '@swarmbee/protocol';
import type { WorkerLink } from '../cluster/worker-link.js';

/** The longest a worker may take for one training call, ms, by default. */
export const DEFAULT_TRAINING_CALL_TIMEOUT_MS = 300_000;

export interface RemoteTrainingLoad {
  /** Names the session on the worker (unique per coordinator). */
  session: string;
  stage: number;
  layerStart: number;
  layerEnd: number;
  graphs: TrainingStageGraphs;
  activations: TrainingStageInfo['activations'];
  /** The stage's adapter tensors' starting values, by name. */
  adapters: Readonly<Record<string, Float32Array>>;
  /**
   * The previous / next stage's worker data URL when it trains on a worker too: hidden
   * states and gradients then pass between the two workers, not through this process.
   */
  prevUrl?: string | undefined;
  nextUrl?: string | undefined;
  intraOpThreads?: number | undefined;
  weightDecay?: number | undefined;
  /** Deadline of each call (the load included), ms. Default {@link DEFAULT_TRAINING_CALL_TIMEOUT_MS}. */
  callTimeoutMs?: number | undefined;
}

let nextRequest = 1;

export class RemoteTrainingStage implements TrainingStage {
  #closed = false;

  private constructor(
    readonly link: WorkerLink,
    readonly session: string,
    readonly info: TrainingStageInfo,
    readonly callTimeoutMs: number,
  ) {}

  /** Starts the session on the worker; resolves once its sessions are loaded. */
  static async load(link: WorkerLink, load: RemoteTrainingLoad): Promise<RemoteTrainingStage> {
    const timeoutMs = load.callTimeoutMs ?? DEFAULT_TRAINING_CALL_TIMEOUT_MS;
    const ready = await link.channel.request(
      {
        type: 'train.load',
        requestId: `train-${nextRequest++}`,
        session: load.session,
        stage: load.stage,
        layerStart: load.layerStart,
        layerEnd: load.layerEnd,
        ...(load.prevUrl ? { prevUrl: load.prevUrl } : {}),
        ...(load.nextUrl ? { nextUrl: load.nextUrl } : {}),
        graphs: graphsToWire(load.graphs),
        activations: load.activations,
        adapters: arraysToWire(load.adapters),
        options: {
          ...(load.intraOpThreads === undefined ? {} : { intraOpThreads: load.intraOpThreads }),
          ...(load.weightDecay === undefined ? {} : { weightDecay: load.weightDecay }),
        },
      },
      { timeoutMs },
    );
    return new RemoteTrainingStage(link, load.session, ready.info, timeoutMs);
  }

  async forward(
    batch: TrainingMicroBatch,
    options?: { evaluate?: boolean },
  ): Promise<TrainingForward> {
    if (batch.hidden && !(batch.hidden instanceof Float32Array))
      throw new EngineFailedError('stages on workers take float32 hidden states');
    const result = await this.#call({
      op: 'forward',
      batch: batchToWire({ ...batch, hidden: batch.hidden as Float32Array | undefined }),
      ...(options?.evaluate === undefined ? {} : { evaluate: options.evaluate }),
    });
    return {
      ...(result.hidden ? { hidden: readArray(result.hidden, 'float32', 'hidden') } : {}),
      ...(result.loss === undefined ? {} : { loss: result.loss }),
    };
  }

  async backward(id: number, gradOut?: Float32Array): Promise<TrainingBackward> {
    const result = await this.#call({
      op: 'backward',
      id,
      ...(gradOut ? { gradOut: toWireArray(gradOut) } : {}),
    });
    return {
      ...(result.gradIn ? { gradIn: readArray(result.gradIn, 'float32', 'gradIn') } : {}),
      ...(result.loss === undefined ? {} : { loss: result.loss }),
    };
  }

  async gradientSquaredNorm(): Promise<number> {
    return this.#expect(await this.#call({ op: 'gradientSquaredNorm' }), 'norm');
  }

  async gradients(): Promise<Record<string, Float32Array>> {
    return arraysFromWire(this.#expect(await this.#call({ op: 'gradients' }), 'gradients'));
  }

  async prepareUpdate(update: TrainingUpdate): Promise<void> {
    await this.#call({ op: 'prepareUpdate', ...update });
  }

  async commitUpdate(): Promise<void> {
    await this.#call({ op: 'commitUpdate' });
  }

  async discard(): Promise<void> {
    await this.#call({ op: 'discard' });
  }

  async state(): Promise<TrainingStageState> {
    return stateFromWire(this.#expect(await this.#call({ op: 'state' }), 'state'));
  }

  async loadState(state: TrainingStageState): Promise<void> {
    await this.#call({ op: 'loadState', state: stateToWire(state) });
  }

  async stats(): Promise<TrainingStageStats> {
    const stats = this.#expect(await this.#call({ op: 'stats' }), 'stats');
    return {
      forwards: stats.forwards ?? 0,
      backwards: stats.backwards ?? 0,
      forwardMsTotal: stats.forwardMsTotal ?? 0,
      backwardMsTotal: stats.backwardMsTotal ?? 0,
      peakInFlight: stats.peakInFlight ?? 0,
      peakStashBytes: stats.peakStashBytes ?? 0,
    };
  }

  /** Ends the session on the worker (best effort: a lost worker has ended it already). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.link.open) return;
    await this.#send({ op: 'close' }).catch(() => {});
  }

  #call(call: TrainingCall): Promise<TrainingResult> {
    if (this.#closed)
      return Promise.reject(
        new EngineFailedError(
          `the training session ${this.session} on ${this.link.name} is closed`,
        ),
      );
    return this.#send(call);
  }

  async #send(call: TrainingCall): Promise<TrainingResult> {
    const reply = await this.link.channel.request(
      {
        type: 'train.call',
        requestId: `train-${nextRequest++}`,
        session: this.session,
        call,
      },
      { timeoutMs: this.callTimeoutMs },
    );
    return reply.result;
  }

  #expect<K extends keyof TrainingResult>(
    result: TrainingResult,
    key: K,
  ): NonNullable<TrainingResult[K]> {
    const value = result[key];
    if (value === undefined)
      throw new EngineFailedError(
        `worker ${this.link.name} answered a training call without its ${String(key)}`,
      );
    return value as NonNullable<TrainingResult[K]>;
  }
}
