/**
 * The generation defaults, one set for every scheduler (in process and in a cluster) and
 * the planner's cost model, so that `swarmbee generate --model` and a cluster batch alike.
 */

/** Longest piece of a prompt that one forward pass (one prefill micro-batch) takes, in tokens. */
export const DEFAULT_PREFILL_CHUNK_TOKENS = 128;
/** Most sequences (rows) in one decode micro-batch. */
export const DEFAULT_MAX_BATCH_ROWS = 16;
/** Micro-batches in the pipeline at once when nothing says otherwise; a deployment uses at least its stage count. */
export const DEFAULT_MAX_IN_FLIGHT = 2;
/** Times a sequence may be replayed into a rebuilt pipeline before it fails. */
export const DEFAULT_MAX_REPLAYS = 8;
