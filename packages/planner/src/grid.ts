/**
 * Piecewise-linear interpolation over the rectangular timing grids of a profile.
 * Measured points are trusted; between them time is linear; outside them the rule
 * errs on the slow side, because a plan that looks fast only by extrapolation is
 * the one that disappoints:
 * - below the first sample, the first sample's time (never faster than measured);
 * - above the last sample, the last segment's slope continues (floored at zero);
 * - an axis with a single sample grows in proportion to the coordinate when the axis
 *   counts work (batch size, chunk tokens), and stays flat when it is context length
 *   (measure two context lengths to capture attention's growth).
 */

/** How a one-sample axis extrapolates. */
export type AxisGrowth = 'proportional' | 'flat';

/** Interpolates f(x) from samples (xs ascending, ys same length, non-empty). */
export function interpolateAxis(
  xs: readonly number[],
  ys: readonly number[],
  x: number,
  growth: AxisGrowth,
): number {
  const n = xs.length;
  const x0 = xs[0]!;
  const y0 = ys[0]!;
  if (n === 1) {
    if (growth === 'proportional' && x > x0 && x0 > 0) return (y0 * x) / x0;
    return y0;
  }
  if (x <= x0) return y0;
  const xLast = xs[n - 1]!;
  if (x >= xLast) {
    const yLast = ys[n - 1]!;
    const slope = (yLast - ys[n - 2]!) / (xLast - xs[n - 2]!);
    return yLast + Math.max(0, slope) * (x - xLast);
  }
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const xa = xs[lo]!;
  const xb = xs[hi]!;
  const t = (x - xa) / (xb - xa);
  return ys[lo]! + t * (ys[hi]! - ys[lo]!);
}

/**
 * Interpolates a grid `ms[row][col]` at (row, col): first along the context axis (cols)
 * within each row, then along the work axis (rows).
 */
export function interpolateGrid(
  rows: readonly number[],
  cols: readonly number[],
  ms: readonly (readonly number[])[],
  row: number,
  col: number,
): number {
  const alongCols = ms.map((values) => interpolateAxis(cols, values, col, 'flat'));
  return Math.max(0, interpolateAxis(rows, alongCols, row, 'proportional'));
}
