/**
 * A training step over a chain of stages: the step's micro-batches run forward and
 * backward through every stage in the order of a pipeline schedule (1F1B or GPipe),
 * each stage accumulating its adapters' gradients; then the global gradient norm is
 * clipped and every stage applies AdamW. The stages are any `TrainingStage`: threads of
 * this process (`TrainingPipeline.local`), or later stages on other devices.
 */
import { InvalidArgumentError, TrainingDivergedError } from '@swarmbee/core';
import {
  type ActivationPolicy,
  adapterModules,
  buildTrainingShard,
  evenRanges,
  type LayerRange,
  type LlamaModelDir,
  type LoraAdapter,
} from '@swarmbee/model';
import { clipFactor } from './adamw.js';
import { OrtTrainingStage } from './ort-training-stage.js';
import {
  DEFAULT_PIPELINE_SCHEDULE,
  type PipelineScheduleKind,
  pipelineSchedule,
} from './pipeline-schedule.js';
import { ThreadedTrainingStage } from './threaded-training-stage.js';
import type { TrainingMicroBatch } from './training-batch.js';
import type {
  TrainingStage,
  TrainingStageOptions,
  TrainingStageState,
  TrainingStageStats,
} from './training-stage.js';

/** One micro-batch of a step, as the driver holds it: tokens in, targets out. */
export interface StepMicroBatch {
  lengths: Int32Array;
  width: number;
  /** Token ids [B, T]. */
  tokens: BigInt64Array;
  /** Next-token targets [B, T], negative where no loss is taken. */
  targets: BigInt64Array;
}

export interface StepOptions {
  learningRate: number;
  /** Clip the global gradient norm to this; 0 or Infinity: no clipping. */
  maxGradNorm: number;
}

export interface StepResult {
  /** Mean cross-entropy over the step's target tokens, nats. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Target tokens (positions that took a loss) and all real tokens of the step. */
  targetTokens: number;
  tokens: number;
}

export interface LocalTrainingOptions {
  /** Layer ranges, one per stage; default `stages` even ranges. */
  ranges?: LayerRange[];
  /** Even stages when `ranges` is absent. Default 1. */
  stages?: number;
  schedule?: PipelineScheduleKind;
  activations?: ActivationPolicy;
  /** Run each stage in a worker thread (default true). */
  threaded?: boolean;
  stage?: TrainingStageOptions;
}

export class TrainingPipeline {
  #nextId = 1;

  constructor(
    readonly stages: readonly TrainingStage[],
    readonly schedule: PipelineScheduleKind = DEFAULT_PIPELINE_SCHEDULE,
  ) {
    if (stages.length === 0) throw new InvalidArgumentError('a training pipeline needs a stage');
    stages.forEach((stage, i) => {
      const expected = i === 0 ? 0 : stages[i - 1]!.info.layerEnd;
      if (stage.info.layerStart !== expected)
        throw new InvalidArgumentError(
          `stage ${i} starts at layer ${stage.info.layerStart}, not ${expected}`,
        );
    });
    if (!stages.at(-1)!.info.isLast)
      throw new InvalidArgumentError('the last stage of a training pipeline must hold the LM head');
  }

  /** K stages of a model dir in this process, each (by default) in its own thread. */
  static async local(
    dir: LlamaModelDir,
    adapter: LoraAdapter,
    options: LocalTrainingOptions = {},
  ): Promise<TrainingPipeline> {
    const { config } = dir.manifest;
    const modules = adapterModules(adapter, config);
    const ranges = options.ranges ?? evenRanges(config.nLayers, options.stages ?? 1);
    const values = Object.fromEntries(adapter.tensors);
    const stageOptions: TrainingStageOptions = {
      allowSpinning: ranges.length === 1,
      ...options.stage,
    };
    const stages: TrainingStage[] = [];
    try {
      for (const range of ranges) {
        const shard = await buildTrainingShard(dir, range, modules, {
          activations: options.activations,
        });
        stages.push(
          options.threaded === false
            ? await OrtTrainingStage.create(shard, values, stageOptions)
            : await ThreadedTrainingStage.create(shard, values, stageOptions),
        );
      }
      return new TrainingPipeline(stages, options.schedule);
    } catch (error) {
      await Promise.allSettled(stages.map((s) => s.close()));
      throw error;
    }
  }

  /** One optimizer step over `microBatches`: {@link accumulate}, then {@link update}. */
  async step(microBatches: readonly StepMicroBatch[], options: StepOptions): Promise<StepResult> {
    const result = await this.accumulate(microBatches);
    await this.update(result.gradNorm, options);
    return result;
  }

  /**
   * Runs the micro-batches forward and backward through the stages, each accumulating
   * its gradients; returns the step's mean loss and the global gradient norm. A loss or
   * norm that is not finite discards the gradients and throws TrainingDivergedError.
   */
  async accumulate(microBatches: readonly StepMicroBatch[]): Promise<StepResult> {
    const counts = countTokens(microBatches);
    let loss = 0;
    try {
      loss = await this.#run(microBatches, 1 / counts.targetTokens);
    } catch (error) {
      await this.#discard();
      throw error;
    }
    const squares = await Promise.all(this.stages.map((s) => s.gradientSquaredNorm()));
    const gradNorm = Math.sqrt(squares.reduce((a, b) => a + b, 0));
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      await this.#discard();
      throw new TrainingDivergedError(
        `the step's loss is ${loss} and its gradient norm ${gradNorm}; the step was not applied`,
      );
    }
    return { loss, gradNorm, ...counts };
  }

  /** The accumulated gradients of every stage, by adapter tensor. */
  async gradients(): Promise<Map<string, Float32Array>> {
    const all = new Map<string, Float32Array>();
    for (const grads of await Promise.all(this.stages.map((s) => s.gradients())))
      for (const [name, grad] of Object.entries(grads)) all.set(name, grad);
    return all;
  }

  /**
   * Clips the accumulated gradients (global norm `gradNorm`) and applies AdamW on every
   * stage — or, if any new value would not be finite, on none (TrainingDivergedError).
   */
  async update(gradNorm: number, options: StepOptions): Promise<void> {
    const update = {
      learningRate: options.learningRate,
      gradientScale: clipFactor(gradNorm, options.maxGradNorm),
    };
    const prepared = await Promise.allSettled(this.stages.map((s) => s.prepareUpdate(update)));
    const failed = prepared.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) {
      await this.#discard();
      throw failed.reason;
    }
    await Promise.all(this.stages.map((s) => s.commitUpdate()));
  }

  /** Σ over the micro-batches of −log p(target), and the target tokens: forward passes only. */
  async evaluate(
    microBatches: readonly StepMicroBatch[],
  ): Promise<{ nll: number; targetTokens: number }> {
    let nll = 0;
    for (const mb of microBatches) {
      let hidden: Float32Array | undefined;
      for (const stage of this.stages) {
        const out = await stage.forward(this.#stageBatch(stage, mb, 0, hidden, 1), {
          evaluate: true,
        });
        hidden = out.hidden;
        if (out.loss !== undefined) nll += out.loss;
      }
    }
    return { nll, targetTokens: countTokens(microBatches).targetTokens };
  }

  async state(): Promise<TrainingStageState[]> {
    return Promise.all(this.stages.map((s) => s.state()));
  }

  async loadState(states: readonly TrainingStageState[]): Promise<void> {
    if (states.length !== this.stages.length)
      throw new InvalidArgumentError(
        `expected ${this.stages.length} stage states, got ${states.length}`,
      );
    await Promise.all(this.stages.map((s, i) => s.loadState(states[i]!)));
  }

  /** The adapter tensors of every stage, by name. */
  async adapterTensors(): Promise<Map<string, Float32Array>> {
    const tensors = new Map<string, Float32Array>();
    for (const state of await this.state())
      for (const [name, t] of Object.entries(state.tensors)) tensors.set(name, t.value);
    return tensors;
  }

  /** Each stage's counters (passes, compute time, peak stash), in stage order. */
  stats(): Promise<TrainingStageStats[]> {
    return Promise.all(this.stages.map((s) => s.stats()));
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.stages.map((s) => s.close()));
  }

  #stageBatch(
    stage: TrainingStage,
    mb: StepMicroBatch,
    id: number,
    hidden: Float32Array | undefined,
    lossScale: number,
  ): TrainingMicroBatch {
    // Copies: a threaded stage takes the arrays it is given away from this thread.
    const batch: TrainingMicroBatch = { id, lengths: mb.lengths.slice(), width: mb.width };
    if (stage.info.isFirst) batch.tokens = mb.tokens.slice();
    else batch.hidden = hidden;
    if (stage.info.isLast) {
      batch.targets = mb.targets.slice();
      batch.lossScale = lossScale;
    }
    return batch;
  }

  /** Runs the schedule; resolves to the step's loss (Σ of the micro-batches' shares). */
  async #run(microBatches: readonly StepMicroBatch[], lossScale: number): Promise<number> {
    const stages = this.stages;
    const count = microBatches.length;
    const ids = microBatches.map(() => this.#nextId++);
    const outputs = stages.map(() => microBatches.map(() => deferred<Float32Array | undefined>()));
    const gradients = stages.map(() =>
      microBatches.map(() => deferred<Float32Array | undefined>()),
    );
    const all = [...outputs.flat(), ...gradients.flat()];
    let loss = 0;
    const schedule = pipelineSchedule(this.schedule, stages.length, count);
    const runStage = async (s: number) => {
      const stage = stages[s]!;
      for (const op of schedule[s]!) {
        const i = op.microBatch;
        if (op.pass === 'forward') {
          const hidden = s === 0 ? undefined : await outputs[s - 1]![i]!.promise;
          const batch = this.#stageBatch(stage, microBatches[i]!, ids[i]!, hidden, lossScale);
          outputs[s]![i]!.resolve((await stage.forward(batch)).hidden);
        } else {
          const gradOut = s === stages.length - 1 ? undefined : await gradients[s + 1]![i]!.promise;
          const out = await stage.backward(ids[i]!, gradOut);
          if (out.loss !== undefined) loss += out.loss;
          gradients[s]![i]!.resolve(out.gradIn);
        }
      }
    };
    await Promise.all(
      stages.map((_, s) =>
        runStage(s).catch((error: unknown) => {
          for (const d of all) d.reject(error);
          throw error;
        }),
      ),
    );
    return loss;
  }

  async #discard(): Promise<void> {
    await Promise.allSettled(this.stages.map((s) => s.discard()));
  }
}

/** Real tokens and target tokens (non-negative targets) of a step. */
export function countTokens(microBatches: readonly StepMicroBatch[]): {
  targetTokens: number;
  tokens: number;
} {
  let targetTokens = 0;
  let tokens = 0;
  for (const mb of microBatches) {
    for (const length of mb.lengths) tokens += length;
    for (const t of mb.targets) if (t >= 0n) targetTokens++;
  }
  if (targetTokens === 0)
    throw new InvalidArgumentError('the step has no target tokens: every position is ignored');
  return { targetTokens, tokens };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Rejected only to unblock waiters after a failure; nobody else needs to observe it.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
