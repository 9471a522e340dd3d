/**
 * How many positions a sequence's KV cache occupies: the engine keeps a stage's cache in
 * arenas whose capacity grows from 32 positions by half at a time (rounded up to 32), at
 * most the model's context. The engine allocates by this rule, the coordinator admits
 * sequences by it, and the planner sizes KV budgets by it, so the three agree.
 */

/** Smallest arena capacity, in positions; capacities grow from there. */
const INITIAL_CAPACITY_POSITIONS = 32;
/** Each growth multiplies the capacity by this, rounded up to whole granules. */
const CAPACITY_GROWTH_FACTOR = 1.5;
const CAPACITY_GRANULE_POSITIONS = 32;

/** The capacity after one growth step from `capacity`. */
function grownCapacity(capacity: number): number {
  const grown = Math.ceil(capacity * CAPACITY_GROWTH_FACTOR);
  return Math.ceil(grown / CAPACITY_GRANULE_POSITIONS) * CAPACITY_GRANULE_POSITIONS;
}

/**
 * Positions of the arena that holds `positions`, growing from `from` (the smallest
 * capacity, or the arena being replaced): at most `maxSeqLen`.
 */
export function arenaCapacity(
  positions: number,
  maxSeqLen: number,
  from = INITIAL_CAPACITY_POSITIONS,
): number {
  let capacity = Math.max(INITIAL_CAPACITY_POSITIONS, from);
  while (capacity < positions) capacity = grownCapacity(capacity);
  return Math.min(capacity, Math.max(maxSeqLen, INITIAL_CAPACITY_POSITIONS));
}
