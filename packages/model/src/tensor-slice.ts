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
  /**
   * On the last stage, the LM head's rows (token ids) this member computes; every member of a
   * group that splits its head has one. Absent: the leader computes the whole head.
   */
  vocab?: IndexRange;
}

/** Feed-forward columns are dealt in units of this many (the model's last unit may be shorter). */
export const DEFAULT_COLUMN_GRANULARITY = TENSOR_COLUMN_GRANULARITY;

export interface TensorSplitOptions {
  /** Relative speed of each member (any positive scale); its length is the degree. */
  weights: readonly number[];
  /** Columns per unit of the feed-forward split. Default {@link DEFAULT_COLUMN_GRANULARITY}. */
  columnGranularity?: number;
  /**
   * Split the LM head by vocabulary too (rows in units of the column granularity), so every
   * member computes its share of the logits; default false: the leader computes them all.
   */
  splitVocab?: boolean;
}

/** The slices of every member of a group, rank order. Refuses a split that cannot be made. */
export function splitTensors(
  config: Pick<LlamaConfig, 'nKvHeads' | 'hiddenDim' | 'vocabSize'>,
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
  const columns = dealUnits(config.hiddenDim, granularity, weights, 'feed-forward columns');
  const vocab = options.splitVocab
    ? dealUnits(config.vocabSize, granularity, weights, 'vocabulary rows')
    : undefined;
  let head = 0;
  return apportion(config.nKvHeads, weights).map((heads, rank) => {
    const kvHeads = { start: head, end: head + heads };
    head = kvHeads.end;
    return {
      degree,
      rank,
      kvHeads,
      columns: columns[rank]!,
      ...(vocab ? { vocab: vocab[rank]! } : {}),
    };
  });
}

/** `total` indices dealt in whole units of `granularity` (the last may be shorter), by weight. */
function dealUnits(
  total: number,
  granularity: number,
  weights: readonly number[],
  what: string,
): IndexRange[] {
  const units = Math.ceil(total / granularity);
  if (weights.length > units)
    throw new TensorSplitError(
      `cannot split ${total} ${what} in units of ${granularity} (${units} units) across ${weights.length} members`,
    );
  let unit = 0;
  return apportion(units, weights).map((count) => {
    const range = { start: unit * granularity, end: Math.min(total, (unit + count) * granularity) };
    unit += count;
    return range;
  });
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
