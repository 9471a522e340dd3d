/**
 * The all-reduce algorithms as state machines over one member's parts: `start` hands in the
 * member's partial, `take` each part that arrived for the same sum (already matched to the
 * group, the sum's `seq` and the link it came on), and `done` says when the partial holds
 * the sum. They throw AllReducePartMismatchError for a part they do not expect, so the
 * member fails the group instead of adding it. Every element is added in rank order
 * (((p0 + p1) + p2) + …), so star and ring give the same bits (description.ts).
 */
import { AllReducePartMismatchError, sumInOrder } from '@swarmbee/core';
import type { TensorGroup } from './description.js';

/** Sends elements [offset, offset + values.length) of the sum's vector to member `to`. */
export type SendPart = (to: number, round: number, offset: number, values: Float32Array) => void;

export interface Reduction {
  /** Starts a sum with this member's partial (the result is written into it). */
  start(partial: Float32Array): void;
  /** Takes a part of the sum in progress: `values` are its elements. */
  take(from: number, round: number, offset: number, length: number, values: Float32Array): void;
  /** Whether `partial` now holds the sum. */
  readonly done: boolean;
}

function mismatch(group: TensorGroup, rank: number, what: string): AllReducePartMismatchError {
  return new AllReducePartMismatchError(
    `tensor group ${group.id} (stage ${group.stage}) member ${rank}: ${what}`,
    { stage: group.stage },
  );
}

/** Members send their partials to rank 0; it adds them in rank order and sends the sum back. */
export class StarReduction implements Reduction {
  readonly #parts: (Float32Array | undefined)[];
  readonly #inOrder: Float32Array[];
  #partial: Float32Array | undefined;
  #missing = 0;
  #done = true;

  constructor(
    private readonly group: TensorGroup,
    private readonly rank: number,
    private readonly send: SendPart,
  ) {
    this.#parts = new Array(group.members.length).fill(undefined);
    this.#inOrder = new Array(group.members.length);
  }

  get done(): boolean {
    return this.#done;
  }

  start(partial: Float32Array): void {
    this.#partial = partial;
    this.#done = false;
    if (this.rank !== 0) {
      this.#missing = 1;
      this.send(0, 0, 0, partial);
      return;
    }
    this.#parts.fill(undefined);
    this.#parts[0] = partial;
    this.#missing = this.#parts.length - 1;
  }

  take(from: number, round: number, offset: number, length: number, values: Float32Array): void {
    const partial = this.#partial as Float32Array;
    const whole = offset === 0 && length === partial.length && values.length === partial.length;
    if (this.rank !== 0) {
      if (from !== 0 || round !== 1 || !whole)
        throw mismatch(
          this.group,
          this.rank,
          `expected the sum from member 0, got round ${round} of ${values.length}/${length} elements at ${offset} from member ${from}`,
        );
      partial.set(values);
      this.#missing = 0;
      this.#done = true;
      return;
    }
    if (round !== 0 || !whole || this.#parts[from] !== undefined)
      throw mismatch(
        this.group,
        this.rank,
        `expected one whole partial of ${partial.length} elements per member, got round ${round} of ${values.length}/${length} at ${offset} from member ${from}`,
      );
    this.#parts[from] = values;
    if (--this.#missing > 0) return;
    for (let r = 0; r < this.#parts.length; r++) this.#inOrder[r] = this.#parts[r] as Float32Array;
    sumInOrder(this.#inOrder, partial);
    this.#parts.fill(undefined);
    this.#inOrder.fill(partial);
    for (let r = 1; r < this.#parts.length; r++) this.send(r, 1, 0, partial);
    this.#done = true;
  }
}

/** Two members: each sends the other its partial and adds the two in rank order. */
export class ExchangeReduction implements Reduction {
  #partial: Float32Array | undefined;
  #done = true;

  constructor(
    private readonly group: TensorGroup,
    private readonly rank: number,
    private readonly send: SendPart,
  ) {}

  get done(): boolean {
    return this.#done;
  }

  start(partial: Float32Array): void {
    this.#partial = partial;
    this.#done = false;
    this.send(1 - this.rank, 0, 0, partial);
  }

  take(from: number, round: number, offset: number, length: number, values: Float32Array): void {
    const own = this.#partial as Float32Array;
    if (round !== 0 || offset !== 0 || length !== own.length || values.length !== own.length)
      throw mismatch(
        this.group,
        this.rank,
        `expected the other partial of ${own.length} elements, got round ${round} of ${values.length}/${length} at ${offset} from member ${from}`,
      );
    // p0 + p1 on both members: fp32 addition is commutative, so these are the same bits.
    for (let i = 0; i < own.length; i++) own[i] = (own[i] as number) + (values[i] as number);
    this.#done = true;
  }
}

/**
 * k ≥ 3 members in a ring 0 → 1 → … → k − 1 → 0, the vector in k chunks. Reduce: rank 0
 * sends its chunks on; each member adds its own to each chunk as it arrives (rank order)
 * and passes it on; rank k − 1 completes each chunk's sum. Gather: the sums go round the
 * ring from rank k − 1 through 0, 1, … to k − 2. Rounds 0..k − 1 carry chunk c's partial
 * sums, rounds k..2k − 1 chunk c's sum.
 */
export class RingReduction implements Reduction {
  readonly #size: number;
  readonly #next: number;
  readonly #prev: number;
  #partial: Float32Array | undefined;
  /** Rounds taken in the sum in progress, one bit per round (2k ≤ 128 rounds: two words). */
  readonly #seen = new Uint32Array(4);
  #remaining = 0;
  #done = true;

  constructor(
    private readonly group: TensorGroup,
    private readonly rank: number,
    private readonly send: SendPart,
  ) {
    this.#size = group.members.length;
    this.#next = (rank + 1) % this.#size;
    this.#prev = (rank + this.#size - 1) % this.#size;
  }

  get done(): boolean {
    return this.#done;
  }

  #bounds(chunk: number, length: number): [number, number] {
    return [
      Math.floor((chunk * length) / this.#size),
      Math.floor(((chunk + 1) * length) / this.#size),
    ];
  }

  start(partial: Float32Array): void {
    this.#partial = partial;
    this.#done = false;
    this.#seen.fill(0);
    // Rank k − 1 completes every chunk; the others wait for every chunk's sum.
    this.#remaining = this.#size;
    if (this.rank !== 0) return;
    for (let c = 0; c < this.#size; c++) {
      const [from, to] = this.#bounds(c, partial.length);
      this.send(this.#next, c, from, partial.subarray(from, to));
    }
  }

  take(from: number, round: number, offset: number, length: number, values: Float32Array): void {
    const own = this.#partial as Float32Array;
    const k = this.#size;
    const gather = round >= k;
    const chunk = gather ? round - k : round;
    const [start, end] = this.#bounds(chunk, own.length);
    const word = round >>> 5;
    const bit = 1 << (round & 31);
    const expected =
      from === this.#prev &&
      round < 2 * k &&
      length === own.length &&
      offset === start &&
      values.length === end - start &&
      ((this.#seen[word] as number) & bit) === 0 &&
      // Rank 0 sends its own partials and takes only sums; rank k − 1 takes only partial
      // sums; a sum arrives after its chunk passed through here.
      (gather ? this.rank !== k - 1 && (this.rank === 0 || this.#has(chunk)) : this.rank !== 0);
    if (!expected)
      throw mismatch(
        this.group,
        this.rank,
        `unexpected ring part: round ${round} of ${values.length}/${length} elements at ${offset} from member ${from}`,
      );
    this.#seen[word] = (this.#seen[word] as number) | bit;
    const mine = own.subarray(start, end);
    if (gather) {
      mine.set(values);
      if (this.#next !== k - 1) this.send(this.#next, round, start, mine);
    } else {
      // (p0 + … + p(r−1)) + pr: the running sum first, as sumInOrder adds.
      for (let i = 0; i < mine.length; i++) mine[i] = (values[i] as number) + (mine[i] as number);
      this.send(this.#next, this.rank === k - 1 ? k + chunk : chunk, start, mine);
      if (this.rank !== k - 1) return;
    }
    if (--this.#remaining === 0) this.#done = true;
  }

  #has(round: number): boolean {
    return ((this.#seen[round >>> 5] as number) & (1 << (round & 31))) !== 0;
  }
}

export function reductionFor(group: TensorGroup, rank: number, send: SendPart): Reduction {
  if (group.algorithm === 'star') return new StarReduction(group, rank, send);
  if (group.members.length === 2) return new ExchangeReduction(group, rank, send);
  return new RingReduction(group, rank, send);
}
