/**
 * The settings of a fine-tuning run, with their defaults and units, and the check that
 * turns a bad value into a coded error naming the option.
 */
import { ContextOverflowError, InvalidArgumentError, type LlamaConfig } from '@swarmbee/core';
import {
  DEFAULT_PIPELINE_SCHEDULE,
  LEARNING_RATE_SCHEDULES,
  type LearningRateSchedule,
  PIPELINE_SCHEDULES,
  type PipelineScheduleKind,
} from '@swarmbee/engine';
import {
  ACTIVATION_POLICIES,
  type ActivationPolicy,
  DEFAULT_ACTIVATION_POLICY,
  DEFAULT_LORA_ALPHA,
  DEFAULT_LORA_RANK,
  DEFAULT_LORA_TARGETS,
  type LoraTarget,
} from '@swarmbee/model';

export interface FinetuneSettings {
  /** LoRA rank r. */
  rank: number;
  /** LoRA alpha: the update is scaled by alpha / r. */
  alpha: number;
  /** Projections adapted in each chosen layer. */
  targets: LoraTarget[];
  /** Layers adapted; default every layer. */
  layers?: number[];
  /** Peak learning rate (AdamW). */
  learningRate: number;
  schedule: LearningRateSchedule;
  /** Optimizer steps of linear warm-up from 0. */
  warmupSteps: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Clip the global gradient norm to this; 0 disables clipping. */
  maxGradNorm: number;
  /** Optimizer steps to run in total. */
  steps: number;
  /** Sequences per micro-batch. */
  microBatchSize: number;
  /** Micro-batches accumulated per optimizer step. */
  accumulation: number;
  /** Longest sequence, tokens; at most the model's context. */
  seqLen: number;
  /** Cut records longer than seqLen instead of refusing them. */
  truncate: boolean;
  /** In-process pipeline stages (even layer ranges). */
  stages: number;
  pipelineSchedule: PipelineScheduleKind;
  activations: ActivationPolicy;
  /** Seed of the adapter's initial values and of the data order. */
  seed: number;
  /** Write a checkpoint every this many optimizer steps (0: only at the end). */
  checkpointInterval: number;
  /** Checkpoints kept (the newest). */
  keepCheckpoints: number;
  /** onnxruntime intra-op threads per stage; default the cores shared among the stages. */
  threads?: number;
}

export const FINETUNE_DEFAULTS = {
  rank: DEFAULT_LORA_RANK,
  alpha: DEFAULT_LORA_ALPHA,
  targets: DEFAULT_LORA_TARGETS,
  learningRate: 2e-4,
  schedule: 'cosine' as LearningRateSchedule,
  weightDecay: 0,
  maxGradNorm: 1,
  steps: 100,
  microBatchSize: 4,
  accumulation: 4,
  /** Capped by the model's context. */
  seqLen: 256,
  truncate: false,
  stages: 1,
  pipelineSchedule: DEFAULT_PIPELINE_SCHEDULE,
  activations: DEFAULT_ACTIVATION_POLICY,
  seed: 1,
  checkpointInterval: 50,
  keepCheckpoints: 2,
} as const;

/** Warm-up default: 5 % of the steps, rounded up. */
export function defaultWarmupSteps(steps: number): number {
  return Math.ceil(steps * 0.05);
}

export function checkSettings(settings: FinetuneSettings, config: LlamaConfig): void {
  const positiveInteger = (name: string, value: number, min = 1) => {
    if (!Number.isInteger(value) || value < min)
      throw new InvalidArgumentError(
        `--${name} must be an integer of at least ${min}, got ${value}`,
      );
  };
  positiveInteger('rank', settings.rank);
  positiveInteger('steps', settings.steps);
  positiveInteger('micro-batch-size', settings.microBatchSize);
  positiveInteger('accumulation', settings.accumulation);
  positiveInteger('seq-len', settings.seqLen);
  positiveInteger('stages', settings.stages);
  positiveInteger('warmup-steps', settings.warmupSteps, 0);
  positiveInteger('checkpoint-interval', settings.checkpointInterval, 0);
  positiveInteger('keep-checkpoints', settings.keepCheckpoints);
  positiveInteger('seed', settings.seed, 0);
  if (settings.threads !== undefined) positiveInteger('threads', settings.threads);
  const positive = (name: string, value: number, allowZero = false) => {
    if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0))
      throw new InvalidArgumentError(
        `--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`,
      );
  };
  positive('alpha', settings.alpha);
  positive('lr', settings.learningRate);
  positive('weight-decay', settings.weightDecay, true);
  positive('max-grad-norm', settings.maxGradNorm, true);
  if (settings.seqLen > config.maxSeqLen)
    throw new ContextOverflowError(
      `--seq-len ${settings.seqLen} is longer than the model's context of ${config.maxSeqLen} tokens`,
    );
  if (settings.stages > config.nLayers)
    throw new InvalidArgumentError(
      `--stages ${settings.stages}: the model has only ${config.nLayers} layers`,
    );
  if (!LEARNING_RATE_SCHEDULES.includes(settings.schedule))
    throw new InvalidArgumentError(
      `--lr-schedule must be one of ${LEARNING_RATE_SCHEDULES.join(', ')}`,
    );
  if (!PIPELINE_SCHEDULES.includes(settings.pipelineSchedule))
    throw new InvalidArgumentError(`--schedule must be one of ${PIPELINE_SCHEDULES.join(', ')}`);
  if (!ACTIVATION_POLICIES.includes(settings.activations))
    throw new InvalidArgumentError(
      `--activations must be one of ${ACTIVATION_POLICIES.join(', ')}`,
    );
}

/** What must not change between a run and its resumption (its maths would). */
export function runIdentity(
  settings: FinetuneSettings,
  modelHash: string,
  dataSha256: string,
  layers: number[],
): Record<string, unknown> {
  const { rank, alpha, targets, learningRate, schedule, warmupSteps, weightDecay } = settings;
  const { maxGradNorm, steps, microBatchSize, accumulation, seqLen, truncate, seed } = settings;
  return {
    modelHash,
    dataSha256,
    rank,
    alpha,
    targets,
    layers,
    learningRate,
    schedule,
    warmupSteps,
    weightDecay,
    maxGradNorm,
    steps,
    microBatchSize,
    accumulation,
    seqLen,
    truncate,
    seed,
  };
}
