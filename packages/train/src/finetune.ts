/**
 * A LoRA fine-tuning run in this process: read and tokenize the data, start (or resume)
 * an adapter, train it over an in-process pipeline of K stages for the given steps —
 * checkpointing every so often, stopping cleanly on a signal — and write the adapter as a
 * PEFT adapter dir. A step whose loss or gradient is not finite is not applied: the run
 * writes a checkpoint of the state before it and stops with TrainingDivergedError.
 */
import { channel } from 'node:diagnostics_channel';
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import {
  asSwarmBeeError,
  OutputExistsError,
  type SwarmBeeError,
  TrainingCheckpointInvalidError,
  TrainingDivergedError,
} from '@swarmbee/core';
import {
  learningRateFactor,
  TrainingPipeline,
  type TrainingStageState,
  type TrainingStageStats,
} from '@swarmbee/engine';
import {
  checkAdapterBase,
  checkTrainable,
  initLoraAdapter,
  type LlamaModelDir,
  type LoraAdapter,
  type LoraSpec,
  loadTokenizer,
  sha256File,
  writePeftAdapter,
} from '@swarmbee/model';
import {
  checkpointSteps,
  newTrainerState,
  readCheckpoint,
  type StepRecord,
  type TrainingSnapshot,
  writeCheckpoint,
} from './checkpoint.js';
import { DataOrder, toMicroBatches } from './data-order.js';
import { readTrainingData, type TrainingExample } from './dataset.js';
import { checkSettings, type FinetuneSettings, runIdentity } from './finetune-options.js';

export type FinetuneEvent =
  | { type: 'start'; step: number; totalSteps: number; examples: number; batchSize: number }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      gradNorm: number;
      learningRate: number;
      /** Real (non-padding) tokens and target tokens of the step. */
      tokens: number;
      targetTokens: number;
      stepMs: number;
    }
  | { type: 'checkpoint'; step: number; path: string }
  | {
      type: 'recover';
      /** Why the pipeline failed. */
      code: string;
      message: string;
      /** The step the run goes on from (its last checkpoint's), and the steps it lost. */
      step: number;
      lostSteps: number;
    }
  | {
      type: 'eval';
      /** The evaluation data file. */
      data: string;
      step: number;
      loss: number;
      perplexity: number;
      targetTokens: number;
    };

/** Recoveries a run makes at most, by default (see `FinetuneRun.maxRecoveries`). */
export const DEFAULT_MAX_RECOVERIES = 3;

/** Fine-tuning progress, published as {@link FinetuneEvent}s (subscribe with node:diagnostics_channel). */
export const FINETUNE_CHANNEL = 'swarmbee:train:progress';
const progressChannel = channel(FINETUNE_CHANNEL);

export interface FinetuneRun {
  model: LlamaModelDir;
  /** JSONL training data. */
  data: string;
  /** The adapter dir written at the end (must not exist or be empty). */
  out: string;
  checkpointDir: string;
  /** Continue from the newest checkpoint in `checkpointDir`. */
  resume?: boolean;
  /** JSONL files to report the loss and perplexity on, before and after training. */
  evalData?: string[];
  settings: FinetuneSettings;
  onEvent?: (event: FinetuneEvent) => void;
  /** Stops after the current step, writing a checkpoint. */
  signal?: AbortSignal;
  /**
   * Opens the pipeline the run trains on, its stages holding `adapter`'s values. Default:
   * `settings.stages` stages in this process.
   */
  openPipeline?: (adapter: LoraAdapter) => Promise<TrainingPipeline>;
  /**
   * Whether a step that failed with `error` (anything but a divergence) can go on: resolves
   * true once a new pipeline can be opened (a cluster redeployed after losing a worker).
   * The run then opens one and goes on from its last checkpoint, so a failure costs at
   * most the steps since. Default: never (the error ends the run).
   */
  recoverable?: (error: SwarmBeeError) => Promise<boolean>;
  /** Most recoveries in one run; the next failure ends it. Default 3. */
  maxRecoveries?: number;
}

/** Loss and perplexity on one evaluation file, before and after training. */
export interface EvalFigures {
  data: string;
  targetTokens: number;
  before: { loss: number; perplexity: number };
  after?: { loss: number; perplexity: number };
}

export interface FinetuneResult {
  /** Optimizer steps done (all of them unless stopped). */
  steps: number;
  /** Real (non-padding) tokens trained on by this invocation, and the time its steps took, ms. */
  tokens: number;
  trainingMs: number;
  stopped: boolean;
  history: StepRecord[];
  /** The adapter dir, when the run finished. */
  adapterDir?: string;
  checkpoint: string;
  eval: EvalFigures[];
  /**
   * Each stage's counters at the end (since the pipeline last opened): compute time of its
   * forward and backward passes, for the pipeline's idle fraction.
   */
  stageStats: TrainingStageStats[];
}

export async function finetune(run: FinetuneRun): Promise<FinetuneResult> {
  const { model, settings } = run;
  const { config } = model.manifest;
  checkTrainable(config, model.manifest.name);
  checkSettings(settings, config);
  await assertEmpty(run.out, 'the adapter output dir; choose another --out');
  const emit = (event: FinetuneEvent) => {
    run.onEvent?.(event);
    if (progressChannel.hasSubscribers) progressChannel.publish(event);
  };
  const tokenizer = await loadTokenizer(model);
  const dataset = {
    tokenizer,
    seqLen: settings.seqLen,
    truncate: settings.truncate,
  };
  const examples = await readTrainingData(run.data, dataset);
  const evalSets: { data: string; examples: TrainingExample[] }[] = [];
  for (const data of run.evalData ?? [])
    evalSets.push({ data, examples: await readTrainingData(data, dataset) });
  const layers = settings.layers ?? Array.from({ length: config.nLayers }, (_, i) => i);
  const spec: LoraSpec = {
    rank: settings.rank,
    alpha: settings.alpha,
    targets: settings.targets,
    layers,
  };
  const identity = runIdentity(
    settings,
    model.manifest.modelHash,
    await sha256File(run.data),
    layers,
  );

  let adapter: LoraAdapter;
  let resumed: TrainingSnapshot | undefined;
  if (run.resume) {
    if ((await checkpointSteps(run.checkpointDir)).length === 0)
      throw new TrainingCheckpointInvalidError(
        `${run.checkpointDir} holds no checkpoint to resume`,
      );
    resumed = (await readCheckpoint(run.checkpointDir)).snapshot;
    for (const [key, value] of Object.entries(identity))
      if (JSON.stringify(resumed.state.run[key]) !== JSON.stringify(value))
        throw new TrainingCheckpointInvalidError(
          `the checkpoint was made with ${key} = ${JSON.stringify(resumed.state.run[key])}, this run has ${JSON.stringify(value)}`,
        );
    adapter = {
      ...resumed.adapter,
      baseModelHash: model.manifest.modelHash,
      baseModelName: model.manifest.name,
    };
    checkAdapterBase(resumed.adapter, model.manifest);
  } else {
    await assertEmpty(
      run.checkpointDir,
      'it holds checkpoints of an earlier run; pass --resume to continue it, or choose another --checkpoint-dir',
    );
    adapter = initLoraAdapter(spec, model.manifest, settings.seed);
  }

  const batchSize = settings.microBatchSize * settings.accumulation;
  const order = new DataOrder(examples, batchSize, settings.seed);
  const openPipeline =
    run.openPipeline ??
    ((values: LoraAdapter) =>
      TrainingPipeline.local(model, values, {
        stages: settings.stages,
        schedule: settings.pipelineSchedule,
        activations: settings.activations,
        stage: {
          intraOpThreads:
            settings.threads ?? Math.max(1, Math.floor(availableParallelism() / settings.stages)),
          optimizer: { weightDecay: settings.weightDecay },
        },
      }));
  const initial = adapter;
  let pipeline = await openPipeline(adapter);
  let recoveries = 0;
  const history: StepRecord[] = resumed ? [...resumed.state.history] : [];
  let step = resumed?.state.step ?? 0;
  const snapshot = async (): Promise<TrainingSnapshot> => {
    const states = await pipeline.state();
    const tensors = new Map<string, Float32Array>();
    const moments = new Map<string, { expAvg: Float32Array; expAvgSq: Float32Array }>();
    for (const state of states)
      for (const [name, t] of Object.entries(state.tensors)) {
        tensors.set(name, t.value);
        moments.set(name, { expAvg: t.expAvg, expAvgSq: t.expAvgSq });
      }
    return {
      adapter: { ...adapter, tensors },
      moments,
      state: newTrainerState(step, identity, history),
    };
  };
  const checkpoint = async () => {
    const path = await writeCheckpoint(
      run.checkpointDir,
      await snapshot(),
      settings.keepCheckpoints,
    );
    emit({ type: 'checkpoint', step, path });
    return path;
  };
  const evaluate = async (when: 'before' | 'after', result: FinetuneResult) => {
    for (const [i, set] of evalSets.entries()) {
      const batches = toMicroBatches(set.examples, settings.microBatchSize);
      const { nll, targetTokens } = await pipeline.evaluate(batches);
      const figures = { loss: nll / targetTokens, perplexity: Math.exp(nll / targetTokens) };
      if (when === 'before') result.eval.push({ data: set.data, targetTokens, before: figures });
      else result.eval[i]!.after = figures;
      emit({ type: 'eval', data: set.data, step, targetTokens, ...figures });
    }
  };

  const result: FinetuneResult = {
    steps: step,
    tokens: 0,
    trainingMs: 0,
    stopped: false,
    history,
    checkpoint: '',
    eval: [],
    stageStats: [],
  };
  try {
    if (resumed) await pipeline.loadState(stageStates(pipeline, resumed));
    emit({ type: 'start', step, totalSteps: settings.steps, examples: examples.length, batchSize });
    await evaluate('before', result);
    let lastCheckpoint = '';
    while (step < settings.steps) {
      if (run.signal?.aborted) {
        result.stopped = true;
        break;
      }
      const started = performance.now();
      const microBatches = toMicroBatches(order.step(step), settings.microBatchSize);
      let done: Awaited<ReturnType<TrainingPipeline['accumulate']>>;
      let learningRate: number;
      try {
        done = await pipeline.accumulate(microBatches);
        learningRate =
          settings.learningRate *
          learningRateFactor(step, { ...settings, totalSteps: settings.steps });
        await pipeline.update(done.gradNorm, { learningRate, maxGradNorm: settings.maxGradNorm });
      } catch (error) {
        if (!(error instanceof TrainingDivergedError)) {
          const coded = asSwarmBeeError(error);
          if (recoveries >= (run.maxRecoveries ?? DEFAULT_MAX_RECOVERIES)) throw coded;
          if (!(await run.recoverable?.(coded))) throw coded;
          recoveries++;
          // Back to the last checkpoint on a new pipeline (or to the start, before the first).
          await pipeline.close();
          const back = lastCheckpoint ? await readCheckpoint(run.checkpointDir) : undefined;
          const from = back?.snapshot ?? resumed;
          pipeline = await openPipeline(
            from ? { ...initial, tensors: from.adapter.tensors } : initial,
          );
          if (from) await pipeline.loadState(stageStates(pipeline, from));
          const lostSteps = step - (from?.state.step ?? 0);
          step = from?.state.step ?? 0;
          history.splice(0, history.length, ...(from?.state.history ?? []));
          emit({
            type: 'recover',
            code: coded.code,
            message: coded.message,
            step,
            lostSteps,
          });
          continue;
        }
        // Neither pass applied anything: the stages still hold the state after the last step.
        const path = await checkpoint();
        throw new TrainingDivergedError(
          `step ${step + 1}: ${error.message}. The last good state (after step ${step}) is checkpointed in ${path}; ` +
            'resume from it with a lower --lr',
          { cause: error },
        );
      }
      step++;
      const stepMs = performance.now() - started;
      result.tokens += done.tokens;
      result.trainingMs += stepMs;
      history.push({ step, loss: done.loss, gradNorm: done.gradNorm, learningRate });
      emit({
        type: 'step',
        step,
        totalSteps: settings.steps,
        loss: done.loss,
        gradNorm: done.gradNorm,
        learningRate,
        tokens: done.tokens,
        targetTokens: done.targetTokens,
        stepMs,
      });
      if (
        settings.checkpointInterval > 0 &&
        step % settings.checkpointInterval === 0 &&
        step < settings.steps
      )
        lastCheckpoint = await checkpoint();
    }
    result.steps = step;
    result.stageStats = await pipeline.stats();
    result.checkpoint = step > 0 || !lastCheckpoint ? await checkpoint() : lastCheckpoint;
    if (!result.stopped) {
      await evaluate('after', result);
      await writePeftAdapter(run.out, (await snapshot()).adapter);
      result.adapterDir = run.out;
    }
    return result;
  } finally {
    await pipeline.close();
  }
}

/** Splits a snapshot's tensors over the pipeline's stages. */
function stageStates(pipeline: TrainingPipeline, snapshot: TrainingSnapshot): TrainingStageState[] {
  return pipeline.stages.map((stage) => {
    const tensors: TrainingStageState['tensors'] = {};
    for (const { name } of stage.info.params) {
      const value = snapshot.adapter.tensors.get(name);
      const moments = snapshot.moments.get(name);
      if (!value || !moments)
        throw new TrainingCheckpointInvalidError(`the checkpoint has no state for ${name}`);
      tensors[name] = { value, ...moments };
    }
    return { step: snapshot.state.step, tensors };
  });
}

async function assertEmpty(path: string, why: string): Promise<void> {
  const entries = await readdir(path).catch(() => [] as string[]);
  if (entries.length > 0) throw new OutputExistsError(`${path} is not empty: ${why}`);
}

export type { TrainingExample };
