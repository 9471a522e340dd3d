/**
 * run.c's greedy BPE merge in O(n log n). run.c rescans every adjacent pair after each
 * merge and joins the one whose merged token scores highest, the leftmost on ties, until
 * no pair merges (quadratic: a 30 k-character prompt took 29 s). Here the symbols form a
 * linked list and every adjacent pair that merges sits in a binary max-heap keyed by
 * (score, position of its left symbol); a merge only changes the two pairs around it.
 * Entries left stale by earlier merges are recognised when they surface and skipped, so
 * each step joins exactly the pair run.c would: the same tokens, in the same order.
 */

/** The token `left` and `right` merge into, or -1 when their joined text is no token. */
export type PairMerge = (left: number, right: number) => number;

/** run.c's `best_score` starts here: a merge must score above it (NaN never does). */
const MIN_MERGE_SCORE = -1e10;

/**
 * Merges `tokens` in place from index `from` on (the ids before it take no part), as
 * run.c's `encode` does, and returns the array shortened to the merged tokens.
 */
export function mergeGreedy(
  tokens: number[],
  from: number,
  merge: PairMerge,
  scores: ArrayLike<number>,
): number[] {
  const count = tokens.length - from;
  if (count < 2) return tokens;
  // Symbol i starts as tokens[from + i]; a merge keeps the left symbol and retires the right.
  const ids = Int32Array.from(tokens.slice(from));
  const next = new Int32Array(count);
  const prev = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    next[i] = i + 1 < count ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new PairHeap(count);
  /** The merge of symbol `left` with its right neighbour, when it scores enough. */
  const mergeAt = (left: number): { id: number; score: number } | undefined => {
    const right = next[left]!;
    if (right < 0) return undefined;
    const id = merge(ids[left]!, ids[right]!);
    if (id < 0) return undefined;
    const score = scores[id]!;
    return score > MIN_MERGE_SCORE ? { id, score } : undefined;
  };
  const offer = (left: number): void => {
    const candidate = mergeAt(left);
    if (candidate) heap.push(candidate.score, left);
  };
  for (let i = 0; i + 1 < count; i++) offer(i);

  while (heap.size > 0) {
    const score = heap.topScore;
    const left = heap.pop();
    if (ids[left]! < 0) continue;
    // The pair at `left` may have changed since this entry was pushed; an entry is live
    // when the pair there now merges with the score it was filed under (its key is exact).
    const candidate = mergeAt(left);
    if (candidate === undefined || candidate.score !== score) continue;
    const right = next[left]!;
    ids[left] = candidate.id;
    ids[right] = -1;
    const after = next[right]!;
    next[left] = after;
    if (after >= 0) prev[after] = left;
    if (prev[left]! >= 0) offer(prev[left]!);
    offer(left);
  }

  tokens.length = from;
  for (let i = 0; i >= 0; i = next[i]!) tokens.push(ids[i]!);
  return tokens;
}

/**
 * A binary max-heap of (score, left symbol) pairs: higher score first, then the lower
 * symbol index — the leftmost pair, since merges never reorder symbols.
 */
class PairHeap {
  #scores: Float64Array;
  #lefts: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.#scores = new Float64Array(Math.max(16, capacity));
    this.#lefts = new Int32Array(Math.max(16, capacity));
  }

  get topScore(): number {
    return this.#scores[0]!;
  }

  push(score: number, left: number): void {
    if (this.size === this.#scores.length) this.#grow();
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(score, left, this.#scores[parent]!, this.#lefts[parent]!)) break;
      this.#scores[i] = this.#scores[parent]!;
      this.#lefts[i] = this.#lefts[parent]!;
      i = parent;
    }
    this.#scores[i] = score;
    this.#lefts[i] = left;
  }

  /** Removes the top entry and returns its left symbol. */
  pop(): number {
    const top = this.#lefts[0]!;
    const last = --this.size;
    const score = this.#scores[last]!;
    const left = this.#lefts[last]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (
        child + 1 < last &&
        before(
          this.#scores[child + 1]!,
          this.#lefts[child + 1]!,
          this.#scores[child]!,
          this.#lefts[child]!,
        )
      )
        child++;
      if (!before(this.#scores[child]!, this.#lefts[child]!, score, left)) break;
      this.#scores[i] = this.#scores[child]!;
      this.#lefts[i] = this.#lefts[child]!;
      i = child;
    }
    this.#scores[i] = score;
    this.#lefts[i] = left;
    return top;
  }

  #grow(): void {
    const scores = new Float64Array(this.#scores.length * 2);
    const lefts = new Int32Array(this.#lefts.length * 2);
    scores.set(this.#scores);
    lefts.set(this.#lefts);
    this.#scores = scores;
    this.#lefts = lefts;
  }
}

/** Whether entry (score, left) comes out of the heap before entry (otherScore, otherLeft). */
function before(score: number, left: number, otherScore: number, otherLeft: number): boolean {
  return score > otherScore || (score === otherScore && left < otherLeft);
}
