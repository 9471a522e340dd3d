/**
 * The MLP half of a decoder layer, forward and backward: x2 = x1 + down(silu(gate) · up)
 * with gate and up from RMSNorm(x1), each projection possibly carrying a LoRA branch.
 */
import { layerTensor } from '../llama-tensors.js';
import { loraBackward, loraForward } from './lora-branch.js';
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
  const gateModule = ctx.module(layer, 'gate_proj');
  const upModule = ctx.module(layer, 'up_proj');
  if (gateModule) {
    const branch = loraForward(ctx, gateModule, norm.out);
    gate = tg.add(gate, branch.delta);
    keep('lora.gate_proj', branch.scaled, ['rows', gateModule.rank]);
  }
  if (upModule) {
    const branch = loraForward(ctx, upModule, norm.out);
    up = tg.add(up, branch.delta);
    keep('lora.up_proj', branch.scaled, ['rows', upModule.rank]);
  }
  if (gateModule || upModule) keep('f', norm.out, ['rows', config.dim]);
  keep('gate', gate, ['rows', config.hiddenDim]);
  keep('up', up, ['rows', config.hiddenDim]);

  const activated = tg.mul(tg.mul(gate, tg.op('Sigmoid', [gate])), up);
  let out = tg.matmulT(activated, ctx.weights.matrix(layerTensor.w2(layer)));
  const downModule = ctx.module(layer, 'down_proj');
  if (downModule) {
    const branch = loraForward(ctx, downModule, activated);
    out = tg.add(out, branch.delta);
    keep('lora.down_proj', branch.scaled, ['rows', downModule.rank]);
  }
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
  const downModule = ctx.module(layer, 'down_proj');
  if (downModule) {
    const activated = tg.mul(gateSilu, up);
    const branch = loraBackward(ctx, downModule, dOut, activated, saved('lora.down_proj'));
    dActivated = tg.add(dActivated, branch.dx);
    for (const [name, grad] of branch.grads) grads.set(name, grad);
  }
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
    const module = ctx.module(layer, target);
    if (!module) continue;
    const branch = loraBackward(ctx, module, dPart, saved('f'), saved(`lora.${target}`));
    dNormOut.push(branch.dx);
    for (const [name, grad] of branch.grads) grads.set(name, grad);
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
