/**
 * The split of a layer range across a tensor-parallel group: member `rank` of `degree`
 * holds KV heads [kvHeads.start, kvHeads.end) — their query heads, keys and values, and
 * the matching input columns of the output projection — and feed-forward columns
 * [columns.start, columns.end) — those output columns of gate and up, the same input
 * columns of down. Shares follow the members' weights (measured speeds): 2:1:1 over 4 KV
 * heads gives 2, 1, 1. Columns are dealt in units of `granularity` (the last unit may be
 * shorter), so slices stay aligned for the kernels.
 */
import {
  apportion,
  type LlamaConfig,
  TENSOR_COLUMN_GRANULARITY,
  TensorSplitError,
} from '@swarmbee/core';

export { apportion };

/** A half-open index range [start, end). */
export interface IndexRange {
  start: number;
  end: number;
}

/** One member's share of every layer of a range. */
export interface TensorSlice {
  /** Members in the group. */
  degree: number;
  /** This member, 0 ≤ rank < degree; rank 0 leads (embedding, LM head, sampling). */
  rank: number;
  /** KV heads this member attends with; its query heads are theirs (grouped-query attention). */
  kvHeads: IndexRange;
  /** Feed-forward (intermediate) columns this member computes. */
  columns: IndexRange;
}

/** Feed-forward columns are dealt in units of this many (the model's last unit may be shorter). */
export const DEFAULT_COLUMN_GRANULARITY = TENSOR_COLUMN_GRANULARITY;

export interface TensorSplitOptions {
  /** Relative speed of each member (any positive scale); its length is the degree. */
  weights: readonly number[];
  /** Columns per unit of the feed-forward split. Default {@link DEFAULT_COLUMN_GRANULARITY}. */
  columnGranularity?: number;
}

/** The slices of every member of a group, rank order. Refuses a split that cannot be made. */
export function splitTensors(
  config: Pick<LlamaConfig, 'nKvHeads' | 'hiddenDim'>,
  options: TensorSplitOptions,
): TensorSlice[] {
  const { weights } = options;
  const degree = weights.length;
  const granularity = options.columnGranularity ?? DEFAULT_COLUMN_GRANULARITY;
  if (degree < 1) throw new TensorSplitError('a tensor-parallel group needs at least one member');
  for (const [rank, weight] of weights.entries()) {
    if (!(Number.isFinite(weight) && weight > 0))
      throw new TensorSplitError(
        `member ${rank}'s weight must be positive and finite, got ${weight}`,
      );
  }
  if (!(Number.isInteger(granularity) && granularity >= 1))
    throw new TensorSplitError(`column granularity must be a positive integer, got ${granularity}`);
  if (degree > config.nKvHeads)
    throw new TensorSplitError(
      `cannot split ${config.nKvHeads} KV heads across ${degree} members: at most ${config.nKvHeads}`,
    );
  const units = Math.ceil(config.hiddenDim / granularity);
  if (degree > units)
    throw new TensorSplitError(
      `cannot split ${config.hiddenDim} feed-forward columns in units of ${granularity} (${units} units) across ${degree} members`,
    );
  const heads = apportion(config.nKvHeads, weights);
  const columnUnits = apportion(units, weights);
  const slices: TensorSlice[] = [];
  let head = 0;
  let unit = 0;
  for (let rank = 0; rank < degree; rank++) {
    const nextHead = head + heads[rank]!;
    const nextUnit = unit + columnUnits[rank]!;
    slices.push({
      degree,
      rank,
      kvHeads: { start: head, end: nextHead },
      columns: {
        start: unit * granularity,
        end: Math.min(config.hiddenDim, nextUnit * granularity),
      },
    });
    head = nextHead;
    unit = nextUnit;
  }
  return slices;
}

/** The slice of an unsplit stage: every head and column on one member. */
export function wholeSlice(config: Pick<LlamaConfig, 'nKvHeads' | 'hiddenDim'>): TensorSlice {
  return {
    degree: 1,
    rank: 0,
    kvHeads: { start: 0, end: config.nKvHeads },
    columns: { start: 0, end: config.hiddenDim },
  };
}
