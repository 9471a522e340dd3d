/**
 * How a tensor-parallel group deals a layer's heads and feed-forward columns among its
 * members, by their weights (relative speeds). `splitTensors` (@swarmbee/model) builds the
 * members' slices from these counts; the planner prices a group from them.
 */
import type { TensorShape } from './profile.js';

/** Feed-forward columns are dealt in units of this many (the model's last unit may be shorter). */
export const TENSOR_COLUMN_GRANULARITY = 32;

/**
 * `total` whole units dealt in proportion to `weights`, at least one each (largest
 * remainder; ties go to the lower rank). Needs total ≥ weights.length.
 */
export function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const quotas = weights.map((w) => (w / sum) * total);
  const counts = quotas.map((q) => Math.max(1, Math.floor(q)));
  let dealt = counts.reduce((a, b) => a + b, 0);
  // The minimum of one may over-deal: take back from the most over-served member above one.
  while (dealt > total) {
    let pick = -1;
    for (let i = 0; i < counts.length; i++)
      if (counts[i]! > 1 && (pick < 0 || counts[i]! - quotas[i]! > counts[pick]! - quotas[pick]!))
        pick = i;
    counts[pick] = counts[pick]! - 1;
    dealt--;
  }
  while (dealt < total) {
    let pick = 0;
    for (let i = 1; i < counts.length; i++)
      if (quotas[i]! - counts[i]! > quotas[pick]! - counts[pick]!) pick = i;
    counts[pick] = counts[pick]! + 1;
    dealt++;
  }
  return counts;
}

/** One member's part of every layer of a split stage. */
export interface TensorShare {
  /** KV heads it holds (and their query heads). */
  kvHeads: number;
  /** Feed-forward columns it computes. */
  columns: number;
}

/**
 * How many of `total` indices each member gets when they are dealt in whole units of
 * `granularity` (the last may be shorter) by weight, as `splitTensors` deals feed-forward
 * columns and vocabulary rows; undefined when there are fewer units than members.
 */
export function dealtCounts(
  total: number,
  granularity: number,
  weights: readonly number[],
): number[] | undefined {
  const units = Math.ceil(total / granularity);
  if (weights.length < 1 || weights.length > units) return undefined;
  let unit = 0;
  return apportion(units, weights).map((count) => {
    const dealt = Math.min(total, (unit + count) * granularity) - unit * granularity;
    unit += count;
    return dealt;
  });
}

/**
 * Every member's heads and columns, by rank, as `splitTensors` deals them; undefined when
 * the group cannot split this shape (more members than KV heads or column units).
 */
export function tensorShares(
  shape: Pick<TensorShape, 'nKvHeads' | 'hiddenDim'>,
  weights: readonly number[],
  granularity = TENSOR_COLUMN_GRANULARITY,
): TensorShare[] | undefined {
  if (weights.length > shape.nKvHeads) return undefined;
  const columns = dealtCounts(shape.hiddenDim, granularity, weights);
  if (!columns) return undefined;
  return apportion(shape.nKvHeads, weights).map((kvHeads, rank) => ({
    kvHeads,
    columns: columns[rank]!,
  }));
}
