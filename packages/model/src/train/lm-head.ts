/**
 * The last stage's head: final RMSNorm, the LM head and cross-entropy against the
 * targets, forward and backward. The loss is Σ −log p(target) · loss_scale over the
 * positions whose target id is not negative, so micro-batches given
 * loss_scale = 1 / (target tokens of the whole step) add up to the step's mean loss —
 * what PyTorch's cross_entropy(reduction='mean', ignore_index=-100) gives for the whole
 * batch at once. d logits = (softmax − onehot(target)) · weight.
 */

import { CLASSIFIER, FINAL_NORM, TOKEN_EMBEDDING } from '../llama-tensors.js';
import { attr } from '../onnx/graph.js';
import { rmsNormBackward, rmsNormForward } from './rms-norm.js';
import type { Saved, StageContext } from './stage-context.js';
import { TRAIN_IO } from './train-io.js';

function headWeight(ctx: StageContext): string {
  return ctx.config.sharedClassifier ? TOKEN_EMBEDDING : CLASSIFIER;
}

/** Each row's target: its index into the vocabulary [N, 1] and its loss weight [N, 1]. */
export interface HeadTargets {
  index: string;
  weight: string;
}

/** Declares `targets` and `loss_scale` (once per graph) and derives each row's index and weight. */
export function headTargets(ctx: StageContext): HeadTargets {
  const { tg } = ctx;
  const targets = tg.g.input(TRAIN_IO.targets, 'int64', ['batch', 'tokens']);
  const lossScale = tg.input(TRAIN_IO.lossScale, []);
  const flat = tg.reshape(targets, [-1, 1]);
  const zero = tg.ints([0]);
  const valid = tg.op('GreaterOrEqual', [flat, zero]);
  return {
    index: tg.op('Where', [valid, flat, zero]),
    weight: tg.mul(tg.cast(valid, tg.float), lossScale),
  };
}

/** The loss of a micro-batch (a scalar); keeps what the backward pass needs in `saved`. */
export function headForward(
  ctx: StageContext,
  x: string,
  targets: HeadTargets,
  saved: Saved,
): string {
  const { tg, config } = ctx;
  const norm = rmsNormForward(ctx, x, FINAL_NORM);
  const logits = tg.matmulT(norm.out, ctx.weights.matrix(headWeight(ctx)));
  const logProbs = tg.op('LogSoftmax', [logits], { axis: attr.int(1) });
  const picked = tg.op('GatherElements', [logProbs, targets.index], { axis: attr.int(1) });
  saved.set('xnF', { value: norm.normed, dims: ['rows', config.dim] });
  saved.set('rF', { value: norm.rstd, dims: ['rows', 1] });
  saved.set('log_probs', { value: logProbs, dims: ['rows', config.vocabSize] });
  return tg.op('Neg', [tg.reduceAll(tg.mul(picked, targets.weight))]);
}

/** The gradient at the head's input x, [N, dim]. */
export function headBackward(
  ctx: StageContext,
  targets: HeadTargets,
  saved: (key: string) => string,
): string {
  const { tg } = ctx;
  const { index, weight } = targets;
  const weighted = tg.mul(tg.op('Exp', [saved('log_probs')]), weight);
  const atTarget = tg.op('GatherElements', [weighted, index], { axis: attr.int(1) });
  const dLogits = tg.op('ScatterElements', [weighted, index, tg.sub(atTarget, weight)], {
    axis: attr.int(1),
  });
  const dNormOut = tg.matmul(dLogits, ctx.weights.matrix(headWeight(ctx)));
  return rmsNormBackward(ctx, dNormOut, saved('xnF'), saved('rF'), FINAL_NORM);
}
