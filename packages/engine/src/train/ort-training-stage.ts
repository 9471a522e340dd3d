/**
 * One stage's training over onnxruntime-node, in the calling thread (run it through
 * `ThreadedTrainingStage` where an event loop must stay responsive). Two sessions: the
 * stage's forward and backward graphs (see @swarmbee/model's stage-graphs.ts). The
 * adapter tensors are fed to both from this stage's own arrays, which AdamW updates in
 * place; gradients accumulate in float32 over the micro-batches of a step.
 */
import {
  asSwarmBeeError,
  EngineClosedError,
  EngineFailedError,
  InvalidArgumentError,
  ShardInvalidError,
} from '@swarmbee/core';
import type { TrainingShard } from '@swarmbee/model';
import { TRAIN_IO } from '@swarmbee/model/graph-io';
import ort from 'onnxruntime-node';
import { stageSessionOptions } from '../stage-session.js';
import { AdapterState } from './adapter-state.js';
import { checkTrainingBatch, type TrainingMicroBatch, trainingFeeds } from './training-batch.js';
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

type Feeds = Record<string, ort.Tensor>;

/** What a micro-batch leaves on the stage between its forward and backward pass. */
interface Held {
  feeds: Feeds;
  bytes: number;
  loss?: number;
}

export class OrtTrainingStage implements TrainingStage {
  readonly info: TrainingStageInfo;
  readonly #forward: ort.InferenceSession;
  readonly #backward: ort.InferenceSession | undefined;
  readonly #adapter: AdapterState;
  readonly #held = new Map<number, Held>();
  #closed = false;
  readonly #stats: TrainingStageStats = {
    forwards: 0,
    backwards: 0,
    forwardMsTotal: 0,
    backwardMsTotal: 0,
    peakInFlight: 0,
    peakStashBytes: 0,
  };

  private constructor(
    shard: TrainingShard,
    sessions: { forward: ort.InferenceSession; backward?: ort.InferenceSession },
    adapters: Readonly<Record<string, Float32Array>>,
    options: TrainingStageOptions,
  ) {
    this.#forward = sessions.forward;
    this.#backward = sessions.backward;
    const { config } = shard;
    this.info = {
      layerStart: shard.layerStart,
      layerEnd: shard.layerEnd,
      isFirst: shard.layerStart === 0,
      isLast: shard.layerEnd === config.nLayers,
      dim: config.dim,
      vocabSize: config.vocabSize,
      maxSeqLen: config.maxSeqLen,
      params: shard.params,
      inputGradient: shard.inputGradient,
      activations: shard.activations,
    };
    this.#adapter = new AdapterState(
      shard.params,
      adapters,
      options.optimizer,
      `layers [${shard.layerStart}, ${shard.layerEnd})`,
    );
  }

  /** Loads the stage's graphs; `adapters` holds at least this stage's adapter tensors. */
  static async create(
    shard: TrainingShard,
    adapters: Readonly<Record<string, Float32Array>>,
    options: TrainingStageOptions = {},
  ): Promise<OrtTrainingStage> {
    if (shard.float !== 'float32')
      throw new ShardInvalidError(`stages train float32 graphs; this one is ${shard.float}`);
    const sessionOptions = trainingSessionOptions(shard.externalDataDir, options);
    const load = async (graph: Uint8Array, which: string) => {
      try {
        return await ort.InferenceSession.create(graph, sessionOptions);
      } catch (error) {
        throw new ShardInvalidError(
          `onnxruntime cannot load the ${which} training graph of layers [${shard.layerStart}, ${shard.layerEnd}): ${(error as Error).message}`,
          { cause: error },
        );
      }
    };
    const forward = await load(shard.forward, 'forward');
    const backward = shard.backward ? await load(shard.backward, 'backward') : undefined;
    return new OrtTrainingStage(shard, { forward, backward }, adapters, options);
  }

  async forward(
    batch: TrainingMicroBatch,
    options: { evaluate?: boolean } = {},
  ): Promise<TrainingForward> {
    this.#checkOpen();
    checkTrainingBatch(batch, this.info);
    const train = options.evaluate !== true;
    if (train && this.#held.has(batch.id))
      throw new InvalidArgumentError(`micro-batch ${batch.id} is already held by this stage`);
    const inputs = trainingFeeds(batch, this.info);
    const feeds = { ...inputs, ...this.#paramFeeds() };
    const held: Held = { feeds, bytes: tensorBytes(Object.values(inputs)) };
    // A recomputing last stage runs everything in its backward graph; the forward only holds.
    const skip = train && this.info.isLast && this.info.activations === 'recompute';
    let out: TrainingForward = {};
    if (!skip) {
      const results = await this.#run(this.#forward, feeds, 'forward');
      if (this.info.isLast) out = { loss: scalar(results[TRAIN_IO.loss]!) };
      else out = { hidden: results[TRAIN_IO.hiddenOut]!.data as Float32Array };
      if (train && this.info.activations === 'stash') {
        for (const name of this.#forward.outputNames) {
          if (!name.startsWith('saved.')) continue;
          held.feeds[name] = results[name]!;
          held.bytes += tensorBytes([results[name]!]);
        }
        if (out.loss !== undefined) held.loss = out.loss;
      }
    }
    if (train) this.#hold(batch.id, held);
    return out;
  }

  async backward(id: number, gradOut?: Float32Array): Promise<TrainingBackward> {
    this.#checkOpen();
    const held = this.#held.get(id);
    if (!held)
      throw new InvalidArgumentError(
        `micro-batch ${id} was not run forward on this stage (or is done)`,
      );
    this.#held.delete(id);
    const session = this.#backward;
    if (!session) return held.loss === undefined ? {} : { loss: held.loss };
    const feeds: Feeds = { ...held.feeds, ...this.#paramFeeds() };
    if (!this.info.isLast) {
      const dims = held.feeds[TRAIN_IO.hiddenIn]?.dims ?? held.feeds[TRAIN_IO.inputIds]!.dims;
      const [rows, width] = dims as [number, number];
      if (gradOut?.length !== rows * width * this.info.dim)
        throw new InvalidArgumentError(
          `grad_out: expected ${rows}x${width}x${this.info.dim} values, got ${gradOut?.length ?? 'none'}`,
        );
      feeds[TRAIN_IO.gradHiddenOut] = new ort.Tensor('float32', gradOut, [
        rows,
        width,
        this.info.dim,
      ]);
    }
    const results = await this.#run(session, feeds, 'backward');
    this.#adapter.accumulate((name) => results[TRAIN_IO.grad(name)]!.data as Float32Array);
    const out: TrainingBackward = {};
    if (this.info.inputGradient) out.gradIn = results[TRAIN_IO.gradHiddenIn]!.data as Float32Array;
    const lossTensor = results[TRAIN_IO.loss];
    const loss = lossTensor ? scalar(lossTensor) : held.loss;
    if (loss !== undefined) out.loss = loss;
    return out;
  }

  async gradientSquaredNorm(): Promise<number> {
    return this.#adapter.squaredNorm();
  }

  async gradients(): Promise<Record<string, Float32Array>> {
    return this.#adapter.gradients();
  }

  async prepareUpdate(update: TrainingUpdate): Promise<void> {
    this.#checkOpen();
    if (this.#held.size > 0)
      throw new InvalidArgumentError(
        `cannot update while ${this.#held.size} micro-batches still wait for their backward pass`,
      );
    this.#adapter.prepare(update);
  }

  async commitUpdate(): Promise<void> {
    this.#checkOpen();
    this.#adapter.commit();
  }

  async discard(): Promise<void> {
    this.#held.clear();
    this.#adapter.discard();
  }

  async state(): Promise<TrainingStageState> {
    return this.#adapter.snapshot();
  }

  async loadState(state: TrainingStageState): Promise<void> {
    this.#adapter.load(state);
    this.#held.clear();
  }

  async stats(): Promise<TrainingStageStats> {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#held.clear();
    try {
      await this.#forward.release();
      await this.#backward?.release();
    } catch (error) {
      throw asSwarmBeeError(error);
    }
  }

  #paramFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const { name, dims } of this.info.params)
      feeds[name] = new ort.Tensor('float32', this.#adapter.value(name), dims);
    return feeds;
  }

  #hold(id: number, held: Held): void {
    this.#held.set(id, held);
    let bytes = 0;
    for (const h of this.#held.values()) bytes += h.bytes;
    this.#stats.peakInFlight = Math.max(this.#stats.peakInFlight, this.#held.size);
    this.#stats.peakStashBytes = Math.max(this.#stats.peakStashBytes, bytes);
  }

  async #run(
    session: ort.InferenceSession,
    all: Feeds,
    which: 'forward' | 'backward',
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const feeds: Feeds = {};
    for (const name of session.inputNames) feeds[name] = all[name]!;
    const start = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(feeds);
    } catch (error) {
      throw new EngineFailedError(
        `${which} pass of layers [${this.info.layerStart}, ${this.info.layerEnd}) failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const ms = performance.now() - start;
    if (which === 'forward') {
      this.#stats.forwards++;
      this.#stats.forwardMsTotal += ms;
    } else {
      this.#stats.backwards++;
      this.#stats.backwardMsTotal += ms;
    }
    return results;
  }

  #checkOpen(): void {
    if (this.#closed) throw new EngineClosedError('the training stage is closed');
  }
}

/**
 * A stage's two sessions read the same frozen weights. With onnxruntime's weight
 * prepacking each session would keep its own packed copy of every weight; without it
 * both read the memory-mapped `weights.bin` pages (the 110M shape trains in 586 MiB
 * instead of 1340, at the same step time). Memory patterns are off too: they size one
 * block for everything a run ever held, which kept every dequantized layer of a
 * quantized base alive (int4: 345 MiB instead of 954).
 */
function trainingSessionOptions(
  externalDataDir: string,
  options: TrainingStageOptions,
): ort.InferenceSession.SessionOptions {
  const sessionOptions = stageSessionOptions(externalDataDir, options);
  sessionOptions.enableMemPattern = false;
  const extra = sessionOptions.extra as { session: Record<string, unknown> };
  extra.session.disable_prepacking = '1';
  return sessionOptions;
}

function scalar(tensor: ort.Tensor): number {
  return Number((tensor.data as Float32Array)[0]);
}

function tensorBytes(tensors: ort.Tensor[]): number {
  let bytes = 0;
  for (const tensor of tensors) bytes += (tensor.data as ArrayBufferView).byteLength;
  return bytes;
}
