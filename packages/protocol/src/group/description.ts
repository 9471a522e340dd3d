/**
 * A tensor-parallel group as the planner describes it to its members: who is in it (each
 * member's data-plane URL, by rank), which all-reduce it runs, and which pipeline stage it
 * serves (named in its errors). Every member gets the same description and its own rank.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { MAX_NAME_LENGTH } from '../messages/common.js';
import { MAX_GROUP_SIZE } from '../messages/data.js';

/**
 * How a group sums: `star` — members send their partials to rank 0, which adds them in rank
 * order and sends the sum back (2 link latencies; rank 0's links carry (k − 1) vectors each
 * way); `ring` — the vector in k chunks around the ring 0 → 1 → … → k − 1 → 0, every chunk
 * accumulated in rank order on its way to rank k − 1 and the sums passed on round the ring
 * (2(k − 1) latencies, each link ~2 vectors, pipelined by chunk); for k = 2 one exchange.
 * Both add every element in rank order, so both give the same bits.
 */
export type AllReduceAlgorithm = 'star' | 'ring';
export const ALL_REDUCE_ALGORITHMS: readonly AllReduceAlgorithm[] = ['star', 'ring'];

export interface TensorGroup {
  /** The group's id, unique among the groups a worker hosts (1-128 characters). */
  id: string;
  /** The pipeline stage the group runs: named in its errors. */
  stage: number;
  /** Each member's data-plane URL (ws:// or wss://), by rank; rank 0 leads. 2 to 64 members. */
  members: readonly string[];
  algorithm: AllReduceAlgorithm;
}

/** Throws InvalidArgumentError naming what is wrong with a group description. */
export function checkTensorGroup(group: TensorGroup, rank: number): void {
  const { id, stage, members, algorithm } = group;
  if (typeof id !== 'string' || id.length < 1 || id.length > MAX_NAME_LENGTH)
    throw new InvalidArgumentError(`a tensor group's id must be 1-${MAX_NAME_LENGTH} characters`);
  if (!Number.isSafeInteger(stage) || stage < 0)
    throw new InvalidArgumentError(`tensor group ${id}: stage must be an integer >= 0`);
  if (!Array.isArray(members) || members.length < 2 || members.length > MAX_GROUP_SIZE)
    throw new InvalidArgumentError(
      `tensor group ${id}: needs 2 to ${MAX_GROUP_SIZE} members, got ${members?.length}`,
    );
  if (!ALL_REDUCE_ALGORITHMS.includes(algorithm))
    throw new InvalidArgumentError(
      `tensor group ${id}: all-reduce ${JSON.stringify(algorithm)} is not one of ${ALL_REDUCE_ALGORITHMS.join(', ')}`,
    );
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= members.length)
    throw new InvalidArgumentError(
      `tensor group ${id}: rank ${rank} is not in [0, ${members.length - 1}]`,
    );
}

/**
 * The members a member exchanges parts with: rank 0 and everyone (star), its two ring
 * neighbours (ring). Each pair is one link, opened once by the higher rank.
 */
export function linkedRanks(group: TensorGroup, rank: number): number[] {
  const size = group.members.length;
  if (group.algorithm === 'star')
    return rank === 0 ? Array.from({ length: size - 1 }, (_, i) => i + 1) : [0];
  const peers = new Set([(rank + size - 1) % size, (rank + 1) % size]);
  return [...peers].sort((a, b) => a - b);
}
