/**
 * A TrainingStage whose onnxruntime sessions live in a worker thread, so the calling
 * thread's event loop keeps answering while a stage computes, and the stages of an
 * in-process pipeline compute at the same time.
 */
import type { Worker } from 'node:worker_threads';
import { EngineClosedError, EngineFailedError, fromWire, type SwarmBeeError } from '@swarmbee/core';
import type { TrainingShard } from '@swarmbee/model';
import { ownBuffer, startThread, threadEntry, threadReady } from '../source-thread.js';
import type { TrainingMicroBatch } from './training-batch.js';
import type {
  TrainingBackward,
  TrainingForward,
  TrainingStage,
  TrainingStageInfo,
  TrainingStageOptions,
  TrainingStageState,
  TrainingStageStats,
  TrainingUpdate,
} from './training-stage.js';
import type {
  TrainingThreadOp,
  TrainingThreadReply,
  TrainingThreadRequest,
} from './training-thread-messages.js';

const THREAD_ENTRY = threadEntry(import.meta.url, 'training-thread');

type Pending = { resolve: (value: unknown) => void; reject: (error: SwarmBeeError) => void };

export class ThreadedTrainingStage implements TrainingStage {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(
    worker: Worker,
    readonly info: TrainingStageInfo,
  ) {
    this.#worker = worker;
    worker.on('message', (reply: TrainingThreadReply) => this.#settle(reply));
    worker.on('error', (error) =>
      this.#failAll(
        new EngineFailedError(`training thread crashed: ${error.message}`, { cause: error }),
      ),
    );
    worker.on('exit', () => this.#failAll(new EngineClosedError('the training thread has exited')));
  }

  /** Starts a thread, loads the stage's graphs there, and resolves once they are ready. */
  static async create(
    shard: TrainingShard,
    adapters: Readonly<Record<string, Float32Array>>,
    options: TrainingStageOptions = {},
  ): Promise<ThreadedTrainingStage> {
    const worker = startThread(THREAD_ENTRY, { shard, adapters, options });
    const info = await threadReady<TrainingStageInfo>(worker, 'training thread');
    return new ThreadedTrainingStage(worker, info);
  }

  /** Token, hidden and target arrays that own their whole buffer move to the thread. */
  forward(batch: TrainingMicroBatch, options?: { evaluate?: boolean }): Promise<TrainingForward> {
    const moved: TrainingMicroBatch = { ...batch, lengths: ownBuffer(batch.lengths) };
    if (batch.tokens) moved.tokens = ownBuffer(batch.tokens);
    if (batch.hidden) moved.hidden = ownBuffer(batch.hidden as Float32Array);
    if (batch.targets) moved.targets = ownBuffer(batch.targets);
    const transfer = [moved.tokens, moved.hidden, moved.targets, moved.lengths].flatMap((a) =>
      a && a.buffer instanceof ArrayBuffer ? [a.buffer] : [],
    );
    return this.#call('forward', [moved, options], transfer) as Promise<TrainingForward>;
  }

  backward(id: number, gradOut?: Float32Array): Promise<TrainingBackward> {
    const moved = gradOut && ownBuffer(gradOut);
    const transfer = moved && moved.buffer instanceof ArrayBuffer ? [moved.buffer] : [];
    return this.#call('backward', [id, moved], transfer) as Promise<TrainingBackward>;
  }

  gradientSquaredNorm(): Promise<number> {
    return this.#call('gradientSquaredNorm', []) as Promise<number>;
  }

  gradients(): Promise<Record<string, Float32Array>> {
    return this.#call('gradients', []) as Promise<Record<string, Float32Array>>;
  }

  async prepareUpdate(update: TrainingUpdate): Promise<void> {
    await this.#call('prepareUpdate', [update]);
  }

  async commitUpdate(): Promise<void> {
    await this.#call('commitUpdate', []);
  }

  async discard(): Promise<void> {
    await this.#call('discard', []);
  }

  state(): Promise<TrainingStageState> {
    return this.#call('state', []) as Promise<TrainingStageState>;
  }

  async loadState(state: TrainingStageState): Promise<void> {
    await this.#call('loadState', [state]);
  }

  stats(): Promise<TrainingStageStats> {
    return this.#call('stats', []) as Promise<TrainingStageStats>;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#call('close', []);
    } finally {
      this.#closed = true;
      await this.#worker.terminate();
    }
  }

  #call(op: TrainingThreadOp, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#closed) return Promise.reject(new EngineClosedError('the training stage is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args } satisfies TrainingThreadRequest, transfer);
    });
  }

  #settle(reply: TrainingThreadReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(fromWire(reply.error));
  }

  #failAll(error: SwarmBeeError): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
