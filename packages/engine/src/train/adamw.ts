/**
 * AdamW on the adapter tensors, as PyTorch's `torch.optim.AdamW` computes it (decoupled
 * weight decay first, then the bias-corrected Adam step), gradient clipping by global
 * norm as `torch.nn.utils.clip_grad_norm_` does it, and the learning-rate schedules of
 * Hugging Face transformers (linear or cosine decay after a linear warm-up).
 */
import { InvalidArgumentError } from '@swarmbee/core';

export interface AdamWOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay per step, as a multiple of the learning rate. Default 0. */
  weightDecay?: number;
  /**
   * FedProx's μ: each gradient gains μ (w − w₀), w₀ the values the stage started with (a
   * federated round's global adapter), which keeps local training near them. Default 0.
   */
  proximalMu?: number;
}

export const DEFAULT_ADAMW = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  proximalMu: 0,
} as const;

/** One tensor's optimizer state: the first and second moment estimates. */
export interface AdamWMoments {
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/**
 * Updates `param` in place from `grad` × `gradScale` (the clipping factor), at optimizer
 * step `step` (1 for the first update).
 */
export function adamwStep(
  param: Float32Array,
  grad: Float32Array,
  moments: AdamWMoments,
  step: number,
  learningRate: number,
  gradScale: number,
  options: Required<AdamWOptions>,
  /** FedProx's anchor w₀ (used when `options.proximalMu` > 0). */
  anchor?: Float32Array,
): void {
  const { beta1, beta2, eps, weightDecay, proximalMu } = options;
  const mu = anchor ? proximalMu : 0;
  const decay = 1 - learningRate * weightDecay;
  const stepSize = learningRate / (1 - beta1 ** step);
  const correction2 = Math.sqrt(1 - beta2 ** step);
  const { expAvg, expAvgSq } = moments;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i]! * gradScale + (mu === 0 ? 0 : mu * (param[i]! - anchor![i]!));
    const m = expAvg[i]! + (g - expAvg[i]!) * (1 - beta1);
    const v = expAvgSq[i]! * beta2 + g * g * (1 - beta2);
    expAvg[i] = m;
    expAvgSq[i] = v;
    param[i] = param[i]! * decay - (stepSize * m) / (Math.sqrt(v) / correction2 + eps);
  }
}

/** Σ g² of a gradient (float64 sum). */
export function squaredNorm(grad: Float32Array): number {
  let sum = 0;
  for (const g of grad) sum += g * g;
  return sum;
}

/** The factor clip_grad_norm_ multiplies every gradient by: min(1, maxNorm / (norm + 1e-6)). */
export function clipFactor(globalNorm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return 1;
  return Math.min(1, maxNorm / (globalNorm + 1e-6));
}

export type LearningRateSchedule = 'constant' | 'linear' | 'cosine';
export const LEARNING_RATE_SCHEDULES: readonly LearningRateSchedule[] = [
  'constant',
  'linear',
  'cosine',
];

export interface ScheduleOptions {
  schedule: LearningRateSchedule;
  /** Steps of linear warm-up from 0. */
  warmupSteps: number;
  /** Optimizer steps of the whole run. */
  totalSteps: number;
}

/**
 * The multiplier of the peak learning rate for the optimizer step with 0-based index
 * `index` (transformers' LambdaLR: the first step uses index 0, so warm-up starts at 0).
 */
export function learningRateFactor(index: number, options: ScheduleOptions): number {
  const { warmupSteps, totalSteps } = options;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new InvalidArgumentError(
      `warm-up steps must be a non-negative integer, got ${warmupSteps}`,
    );
  if (index < warmupSteps) return index / Math.max(1, warmupSteps);
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  const progress = (index - warmupSteps) / decaySteps;
  switch (options.schedule) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - index) / decaySteps);
    case 'cosine':
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  }
}
