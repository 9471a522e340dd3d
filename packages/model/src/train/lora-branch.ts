/**
 * A LoRA branch beside a frozen projection: delta = (x · Aᵀ · scale) · Bᵀ, with A
 * [r, in] and B [out, r] graph inputs. The backward pass gives the adapter's gradients
 * dB = dYᵀ · (x Aᵀ scale), dA = (dY · B · scale)ᵀ · x, and the branch's share of dx.
 */
import { type LoraModule, type LoraTarget, loraTensor } from '../lora/lora-spec.js';
import type { Saved, StageContext } from './stage-context.js';

export interface LoraForward {
  delta: string;
  /** x · Aᵀ · scale, [N, r]: what the backward pass needs besides x. */
  scaled: string;
}

export function loraForward(ctx: StageContext, module: LoraModule, x: string): LoraForward {
  const { tg } = ctx;
  const a = ctx.param(loraTensor.a(module.layer, module.target));
  const b = ctx.param(loraTensor.b(module.layer, module.target));
  const scaled = tg.scale(tg.matmulT(x, a), module.scale);
  return { delta: tg.matmulT(scaled, b), scaled };
}

export interface LoraBackward {
  /** The branch's share of dx, [N, in]. */
  dx: string;
  /** Gradients of A and B, by adapter tensor name. */
  grads: Map<string, string>;
}

export function loraBackward(
  ctx: StageContext,
  module: LoraModule,
  dOut: string,
  x: string,
  scaled: string,
): LoraBackward {
  const { tg } = ctx;
  const aName = loraTensor.a(module.layer, module.target);
  const bName = loraTensor.b(module.layer, module.target);
  const dScaled = tg.scale(tg.matmul(dOut, ctx.param(bName)), module.scale);
  return {
    dx: tg.matmul(dScaled, ctx.param(aName)),
    grads: new Map([
      [aName, tg.tMatmul(dScaled, x)],
      [bName, tg.tMatmul(dOut, scaled)],
    ]),
  };
}

/**
 * `y` with the LoRA branch of the layer's `target` on `x` added when the layer adapts it,
 * keeping the branch's scaled input as `lora.<target>` for the backward pass.
 */
export function adaptedProjection(
  ctx: StageContext,
  layer: number,
  target: LoraTarget,
  x: string,
  y: string,
  saved: Saved,
): string {
  const module = ctx.module(layer, target);
  if (!module) return y;
  const branch = loraForward(ctx, module, x);
  saved.set(`lora.${target}`, { value: branch.scaled, dims: ['rows', module.rank] });
  return ctx.tg.add(y, branch.delta);
}

/**
 * The share of dx the LoRA branch of the layer's `target` on `x` takes from `dY`, its
 * adapter's gradients added to `grads`; undefined when the layer does not adapt `target`
 * (`x` is only asked for when it does).
 */
export function adaptedProjectionGrad(
  ctx: StageContext,
  layer: number,
  target: LoraTarget,
  dY: string,
  x: () => string,
  saved: (key: string) => string,
  grads: Map<string, string>,
): string | undefined {
  const module = ctx.module(layer, target);
  if (!module) return undefined;
  const branch = loraBackward(ctx, module, dY, x(), saved(`lora.${target}`));
  for (const [name, grad] of branch.grads) grads.set(name, grad);
  return branch.dx;
}
