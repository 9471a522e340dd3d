/**
 * The predicted time of one all-reduce of a tensor-parallel group (the data plane's star and
 * ring, `@swarmbee/protocol`'s group/reductions.ts), from the link's one-way latency and
 * bandwidth, the vector's size and the member count. A pure function: the planner charges
 * it twice per layer of a tensor-parallel stage.
 *
 * Terms: α one-way latency; a part of S bytes takes S / B on the wire (plus its framing);
 * c is the fixed CPU time a member spends per part it sends or receives (encode, syscalls,
 * decode, the event loop's turn), measured on loopback.
 *
 * - star: members → rank 0 → members: 2 (α + S/B) on the wire, and rank 0 handles k − 1
 *   parts each way in turn: 2c (the member's send and receive) + 2(k − 1)c. When rank 0's
 *   links share one port (a switch), its k − 1 parts each way are serialized on it:
 *   2 (k − 1) S/B instead of 2 S/B.
 * - ring, k = 2: one exchange, α + S/B + 2c.
 * - ring, k ≥ 3: k chunks of S/k. Rank 0 puts its k chunks on the first link one after
 *   another; the last of them then crosses k − 2 more links to rank k − 1, and its sum
 *   k − 1 links round to rank k − 2; every link crossing costs α + s/B + 2c.
 *   Total: k (s/B + c) + α + c + (2k − 3)(α + s/B + 2c), s = S/k + framing.
 */
import { InvalidArgumentError } from '@swarmbee/core';

/** Bytes of framing per part: msgpack envelope, tensor-frame prefix and padding, WebSocket header. */
export const ALL_REDUCE_PART_OVERHEAD_BYTES = 128;
/** Bytes per element summed (fp32). */
const ELEMENT_BYTES = 4;

export type AllReduceAlgorithmName = 'star' | 'ring';

export interface AllReduceCostInput {
  algorithm: AllReduceAlgorithmName;
  /** Members in the group (k ≥ 2). */
  members: number;
  /** fp32 elements of the vector summed ([rows, dim]: rows × dim). */
  elements: number;
  /** One-way latency of a link between members, ms (half the measured round trip). */
  oneWayMs: number;
  /** Bandwidth of a link, bytes per second (Infinity: no limit). */
  bytesPerSecond: number;
  /** CPU a member spends per part it sends or receives, ms. */
  perPartMs: number;
  /** Rank 0's links share one port (a switch): its parts each way are serialized. Default false. */
  sharedPort?: boolean;
}

/** Predicted wall time of one all-reduce, ms. */
export function predictAllReduceMs(input: AllReduceCostInput): number {
  const { algorithm, members: k, elements, oneWayMs: alpha, bytesPerSecond, perPartMs: c } = input;
  if (!Number.isInteger(k) || k < 2)
    throw new InvalidArgumentError(`an all-reduce needs at least 2 members, got ${k}`);
  if (!(elements >= 0) || !(alpha >= 0) || !(bytesPerSecond > 0) || !(c >= 0))
    throw new InvalidArgumentError(
      'an all-reduce cost needs elements, latency and CPU per part >= 0 and bandwidth > 0',
    );
  const wireMs = (bytes: number) => (bytes * 1000) / bytesPerSecond;
  const vector = elements * ELEMENT_BYTES + ALL_REDUCE_PART_OVERHEAD_BYTES;
  if (algorithm === 'star') {
    const fanIn = input.sharedPort ? k - 1 : 1;
    return 2 * (alpha + fanIn * wireMs(vector)) + 2 * c + 2 * (k - 1) * c;
  }
  if (k === 2) return alpha + wireMs(vector) + 2 * c;
  const chunk = (elements * ELEMENT_BYTES) / k + ALL_REDUCE_PART_OVERHEAD_BYTES;
  const crossing = alpha + wireMs(chunk) + 2 * c;
  return k * (wireMs(chunk) + c) + alpha + c + (2 * k - 3) * crossing;
}

/** The algorithm predicted faster for these links and this vector (star on a tie). */
export function fasterAllReduce(input: Omit<AllReduceCostInput, 'algorithm'>): {
  algorithm: AllReduceAlgorithmName;
  ms: number;
} {
  const star = predictAllReduceMs({ ...input, algorithm: 'star' });
  const ring = predictAllReduceMs({ ...input, algorithm: 'ring' });
  return ring < star ? { algorithm: 'ring', ms: ring } : { algorithm: 'star', ms: star };
}
