/**
 * The all-reduce of a tensor-parallel group: every member holds a partial result of the
 * same shape (its heads' share of an attention output, its columns' share of an MLP
 * output) and needs their element-wise sum. Members run it twice per layer, so an
 * implementation's fixed cost per call is what a tensor-parallel token pays.
 *
 * Implementations: in one process across stage threads (engine), and over the data plane
 * between worker processes (star at the group's leader, or ring).
 */

/** Sums partial vectors across the members of one tensor-parallel group. */
export interface AllReduce {
  /** This member's place in the group, 0 ≤ rank < size; rank 0 leads. */
  readonly rank: number;
  /** Members in the group (the tensor-parallel degree). */
  readonly size: number;
  /**
   * Resolves with the element-wise fp32 sum of every member's `partial` (the same length
   * on every member) — bit-identical on every member and from run to run, because each
   * element is added in an order fixed by the group, not by arrival. The result may be
   * `partial` itself, overwritten; the caller owns it once this resolves. Rejects with a
   * coded error when a member is lost or `signal` aborts.
   */
  sum(partial: Float32Array, signal?: AbortSignal): Promise<Float32Array>;
  /** Leaves the group; a pending `sum` rejects. */
  close(): Promise<void>;
}

/**
 * Adds `parts` element-wise into `out` in the order given (rank order), so every caller that
 * passes the same parts in the same order gets the same bits. `out` may be `parts[0]`.
 */
export function sumInOrder(parts: readonly Float32Array[], out: Float32Array): Float32Array {
  const first = parts[0];
  if (first === undefined) throw new RangeError('sumInOrder needs at least one part');
  for (const part of parts) {
    if (part.length !== out.length) {
      throw new RangeError(`sumInOrder: a part has ${part.length} elements, out has ${out.length}`);
    }
  }
  if (parts.indexOf(out) > 0) throw new RangeError('sumInOrder: out may be only the first part');
  if (out !== first) out.set(first);
  for (let p = 1; p < parts.length; p++) {
    const part = parts[p] as Float32Array;
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (part[i] as number);
  }
  return out;
}
