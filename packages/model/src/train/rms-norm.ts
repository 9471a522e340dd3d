/**
 * RMSNorm forward and backward on [N, dim] rows: y = x · r · g with
 * r = 1 / √(mean(x²) + eps). The gain g is frozen, so the backward pass yields only
 * dx = r · (dxn − xn · mean(dxn · xn)), where xn = x · r and dxn = dy · g.
 */
import type { StageContext } from './stage-context.js';

export interface NormForward {
  out: string;
  /** x · r, [N, dim]. */
  normed: string;
  /** r, [N, 1]. */
  rstd: string;
}

export function rmsNormForward(ctx: StageContext, x: string, gain: string): NormForward {
  const { tg } = ctx;
  const meanSquare = tg.reduceMean(tg.mul(x, x), [-1]);
  const rstd = tg.op('Reciprocal', [tg.op('Sqrt', [tg.add(meanSquare, ctx.normEps)])]);
  const normed = tg.mul(x, rstd);
  return { out: tg.mul(normed, ctx.weights.tensor(gain)), normed, rstd };
}

export function rmsNormBackward(
  ctx: StageContext,
  dOut: string,
  normed: string,
  rstd: string,
  gain: string,
): string {
  const { tg } = ctx;
  const dNormed = tg.mul(dOut, ctx.weights.tensor(gain));
  const projection = tg.reduceMean(tg.mul(dNormed, normed), [-1]);
  return tg.mul(rstd, tg.sub(dNormed, tg.mul(normed, projection)));
}
