/**
 * The attention half of a decoder layer, forward and backward, on the [N, dim]
 * residual stream: x1 = x + o_proj(attention(rope(q), rope(k), v)) with q, k, v from
 * RMSNorm(x), each projection possibly carrying a LoRA branch. Grouped-query attention
 * folds the query heads of a KV group into one matmul, as the inference shards do, so
 * the key and value gradients sum over the group by the matmul itself.
 */
import { headDim } from '@swarmbee/core';
import { layerTensor } from '../llama-tensors.js';
import type { LoraTarget } from '../lora/lora-spec.js';
import { adaptedProjection, adaptedProjectionGrad } from './lora-branch.js';
import { rmsNormBackward, rmsNormForward } from './rms-norm.js';
import { rope, type Saved, type StageContext } from './stage-context.js';

const QKV: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj'];

export function attentionForward(
  ctx: StageContext,
  layer: number,
  x: string,
  saved: Saved,
): string {
  const { tg, config } = ctx;
  const hd = headDim(config);
  const qDim = config.nHeads * hd;
  const kvDim = config.nKvHeads * hd;
  const keep = (key: string, value: string, dims: (number | string)[]) =>
    saved.set(key, { value, dims });

  const norm = rmsNormForward(ctx, x, layerTensor.attnNorm(layer));
  keep('xn1', norm.normed, ['rows', config.dim]);
  keep('r1', norm.rstd, ['rows', 1]);
  let qkv = tg.matmulT(norm.out, ctx.weights.matrix(layerTensor.wqkv(layer)));
  if (config.qkvBias) qkv = tg.add(qkv, ctx.weights.tensor(layerTensor.bqkv(layer)));
  const parts = tg.split(qkv, [qDim, kvDim, kvDim], 1);
  QKV.forEach((target, i) => {
    parts[i] = adaptedProjection(ctx, layer, target, norm.out, parts[i]!, saved);
  });
  if (QKV.some((t) => ctx.module(layer, t))) keep('h', norm.out, ['rows', config.dim]);
  const [q, k, v] = parts as [string, string, string];

  const queries = ctx.toGrouped(rope(ctx, q, config.nHeads));
  const keys = ctx.toKvHeads(rope(ctx, k, config.nKvHeads));
  const values = ctx.toKvHeads(v);
  const scores = tg.add(
    tg.div(tg.matmul(queries, tg.transposeLast(keys)), tg.scalar(Math.sqrt(hd))),
    ctx.groupBias,
  );
  const probs = tg.op('Softmax', [scores], { axis: { kind: 'int', value: -1 } });
  const context = ctx.fromGrouped(tg.matmul(probs, values));
  keep('queries', queries, ['batch', config.nKvHeads, 'group_tokens', hd]);
  keep('keys', keys, ['batch', config.nKvHeads, 'tokens', hd]);
  keep('values', values, ['batch', config.nKvHeads, 'tokens', hd]);
  keep('probs', probs, ['batch', config.nKvHeads, 'group_tokens', 'tokens']);

  const out = adaptedProjection(
    ctx,
    layer,
    'o_proj',
    context,
    tg.matmulT(context, ctx.weights.matrix(layerTensor.wo(layer))),
    saved,
  );
  if (ctx.module(layer, 'o_proj')) keep('context', context, ['rows', qDim]);
  return tg.add(x, out);
}

/**
 * Given dx1 (the gradient at the attention half's output), the gradient at its input x
 * and the gradients of its adapters (added to `grads`).
 */
export function attentionBackward(
  ctx: StageContext,
  layer: number,
  dOut: string,
  saved: (key: string) => string,
  grads: Map<string, string>,
): string {
  const { tg, config } = ctx;
  const hd = headDim(config);

  let dContext = tg.matmul(dOut, ctx.weights.matrix(layerTensor.wo(layer)));
  const dxO = adaptedProjectionGrad(
    ctx,
    layer,
    'o_proj',
    dOut,
    () => saved('context'),
    saved,
    grads,
  );
  if (dxO) dContext = tg.add(dContext, dxO);

  // context = probs · values, probs = softmax(queries · keysᵀ / √hd + bias).
  const probs = saved('probs');
  const dGrouped = ctx.toGrouped(dContext);
  const dValues = tg.matmul(tg.transposeLast(probs), dGrouped);
  const dProbs = tg.matmul(dGrouped, tg.transposeLast(saved('values')));
  const rowDot = tg.reduceSumKeep(tg.mul(dProbs, probs), [-1]);
  const dScores = tg.div(tg.mul(probs, tg.sub(dProbs, rowDot)), tg.scalar(Math.sqrt(hd)));
  const dQueries = tg.matmul(dScores, saved('keys'));
  const dKeys = tg.matmul(tg.transposeLast(dScores), saved('queries'));

  const dParts = [
    rope(ctx, ctx.fromGrouped(dQueries), config.nHeads, true),
    rope(ctx, ctx.fromKvHeads(dKeys), config.nKvHeads, true),
    ctx.fromKvHeads(dValues),
  ];
  const dNormOut = [tg.matmul(tg.concat(dParts, 1), ctx.weights.matrix(layerTensor.wqkv(layer)))];
  QKV.forEach((target, i) => {
    const dx = adaptedProjectionGrad(
      ctx,
      layer,
      target,
      dParts[i]!,
      () => saved('h'),
      saved,
      grads,
    );
    if (dx) dNormOut.push(dx);
  });
  const dx = rmsNormBackward(
    ctx,
    tg.sum(dNormOut),
    saved('xn1'),
    saved('r1'),
    layerTensor.attnNorm(layer),
  );
  return tg.add(dOut, dx);
}

/** Whether a layer has an adapter on any attention projection. */
export function attentionAdapted(ctx: StageContext, layer: number): boolean {
  return [...QKV, 'o_proj' as const].some((t) => ctx.module(layer, t) !== undefined);
}
