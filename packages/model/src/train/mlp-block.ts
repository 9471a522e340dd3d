/**
 * The MLP half of a decoder layer, forward and backward: x2 = x1 + down(silu(gate) · up)
 * with gate and up from RMSNorm(x1), each projection possibly carrying a LoRA branch.
 */
import { layerTensor } from '../llama-tensors.js';
import { adaptedProjection, adaptedProjectionGrad } from './lora-branch.js';
import { rmsNormBackward, rmsNormForward } from './rms-norm.js';
import type { Saved, StageContext } from './stage-context.js';

export function mlpForward(ctx: StageContext, layer: number, x: string, saved: Saved): string {
  const { tg, config } = ctx;
  const keep = (key: string, value: string, dims: (number | string)[]) =>
    saved.set(key, { value, dims });
  const norm = rmsNormForward(ctx, x, layerTensor.ffnNorm(layer));
  keep('xn2', norm.normed, ['rows', config.dim]);
  keep('r2', norm.rstd, ['rows', 1]);
  let [gate, up] = tg.split(
    tg.matmulT(norm.out, ctx.weights.matrix(layerTensor.w13(layer))),
    [config.hiddenDim, config.hiddenDim],
    1,
  ) as [string, string];
  gate = adaptedProjection(ctx, layer, 'gate_proj', norm.out, gate, saved);
  up = adaptedProjection(ctx, layer, 'up_proj', norm.out, up, saved);
  if (ctx.module(layer, 'gate_proj') || ctx.module(layer, 'up_proj'))
    keep('f', norm.out, ['rows', config.dim]);
  keep('gate', gate, ['rows', config.hiddenDim]);
  keep('up', up, ['rows', config.hiddenDim]);

  const activated = tg.mul(tg.mul(gate, tg.op('Sigmoid', [gate])), up);
  const out = adaptedProjection(
    ctx,
    layer,
    'down_proj',
    activated,
    tg.matmulT(activated, ctx.weights.matrix(layerTensor.w2(layer))),
    saved,
  );
  return tg.add(x, out);
}

/** Given dx2, the gradient at the MLP half's input x1, adding its adapters' gradients to `grads`. */
export function mlpBackward(
  ctx: StageContext,
  layer: number,
  dOut: string,
  saved: (key: string) => string,
  grads: Map<string, string>,
): string {
  const { tg } = ctx;
  const gate = saved('gate');
  const up = saved('up');
  const sigmoid = tg.op('Sigmoid', [gate]);
  const gateSilu = tg.mul(gate, sigmoid);

  let dActivated = tg.matmul(dOut, ctx.weights.matrix(layerTensor.w2(layer)));
  const dxDown = adaptedProjectionGrad(
    ctx,
    layer,
    'down_proj',
    dOut,
    () => tg.mul(gateSilu, up),
    saved,
    grads,
  );
  if (dxDown) dActivated = tg.add(dActivated, dxDown);
  // d/dgate silu(gate) = σ(gate) · (1 + gate · (1 − σ(gate))).
  const dUp = tg.mul(dActivated, gateSilu);
  const siluSlope = tg.mul(
    sigmoid,
    tg.add(tg.scalar(1), tg.mul(gate, tg.sub(tg.scalar(1), sigmoid))),
  );
  const dGate = tg.mul(tg.mul(dActivated, up), siluSlope);

  const dNormOut = [
    tg.matmul(tg.concat([dGate, dUp], 1), ctx.weights.matrix(layerTensor.w13(layer))),
  ];
  for (const [target, dPart] of [
    ['gate_proj', dGate],
    ['up_proj', dUp],
  ] as const) {
    const dx = adaptedProjectionGrad(ctx, layer, target, dPart, () => saved('f'), saved, grads);
    if (dx) dNormOut.push(dx);
  }
  const dx = rmsNormBackward(
    ctx,
    tg.sum(dNormOut),
    saved('xn2'),
    saved('r2'),
    layerTensor.ffnNorm(layer),
  );
  return tg.add(dOut, dx);
}
