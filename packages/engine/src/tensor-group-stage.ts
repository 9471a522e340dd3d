/**
 * A pipeline stage run by an in-process tensor-parallel group: one member per stage
 * thread (`ThreadedStage.createMember`), summing over shared memory
 * (`SharedAllReduce`). A micro-batch goes to every member at once; the stage's output is
 * the leader's (rank 0), which alone embeds, holds the LM head and samples. A member that
 * fails closes the group, so the others stop waiting for its sums.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import type { TensorSliceShard } from '@swarmbee/model';
import type { SegmentEmulation } from './device-emulation.js';
import {
  type AllReduceWait,
  createSharedGroup,
  DEFAULT_ALL_REDUCE_WAIT,
  DEFAULT_SLOT_ELEMENTS,
} from './shared-all-reduce.js';
import type {
  StageBatch,
  StageEngine,
  StageInfo,
  StageOptions,
  StageOutput,
  StageStats,
} from './stage-engine.js';
import { ThreadedStage } from './threaded-stage.js';

export interface TensorGroupOptions {
  stage?: StageOptions;
  /**
   * Elements of each member's shared slot: a partial larger than this is summed in pieces.
   * Default {@link DEFAULT_SLOT_ELEMENTS} (1 MiB of fp32 per member and set).
   */
  slotElements?: number;
  /** How members wait for each other's partials. Default {@link DEFAULT_ALL_REDUCE_WAIT}. */
  wait?: AllReduceWait;
  /** Benchmarks: each member's emulated device by rank (its segments paced); default none. */
  emulation?: readonly SegmentEmulation[];
}

export class TensorGroupStage implements StageEngine {
  readonly info: StageInfo;

  private constructor(readonly members: readonly StageEngine[]) {
    const leader = members[0]!;
    // The group admits what its most loaded member's cache admits.
    const limits = members
      .map((m) => m.info.limits)
      .reduce((a, b) => (b.kvBytesPerPosition > a.kvBytesPerPosition ? b : a));
    this.info = { ...leader.info, limits };
  }

  /** Starts one thread per member; `shards` are the group's slices in rank order. */
  static async create(
    shards: readonly TensorSliceShard[],
    options: TensorGroupOptions = {},
  ): Promise<TensorGroupStage> {
    shards.forEach((shard, rank) => {
      if (shard.slice.rank !== rank || shard.slice.degree !== shards.length)
        throw new InvalidArgumentError(
          `shard ${rank} of a group of ${shards.length} holds the slice of rank ${shard.slice.rank} of ${shard.slice.degree}`,
        );
    });
    if (options.emulation !== undefined && options.emulation.length !== shards.length)
      throw new InvalidArgumentError(
        `a group of ${shards.length} members was given ${options.emulation.length} emulated devices`,
      );
    const group = createSharedGroup(
      shards.length,
      options.slotElements ?? DEFAULT_SLOT_ELEMENTS,
      options.wait ?? DEFAULT_ALL_REDUCE_WAIT,
    );
    const started = await Promise.allSettled(
      shards.map((shard, rank) =>
        ThreadedStage.createMember(shard, group, options.stage, options.emulation?.[rank]),
      ),
    );
    const members = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.allSettled(members.map((m) => m.close()));
      throw failed.reason;
    }
    return new TensorGroupStage(members);
  }

  /** Every member runs the batch (each with its own copy of the inputs); the leader's output is the stage's. */
  async forward(batch: StageBatch): Promise<StageOutput> {
    // Copies first: the leader's thread may take the caller's buffers when they are movable.
    const batches = this.members.map((_, rank) =>
      rank === 0
        ? batch
        : {
            ...batch,
            ...(batch.tokens ? { tokens: batch.tokens.slice() } : {}),
            ...(batch.hidden ? { hidden: batch.hidden.slice() } : {}),
            buffersMovable: true,
          },
    );
    const runs = this.members.map((member, rank) => member.forward(batches[rank]!));
    try {
      return (await Promise.all(runs))[0]!;
    } catch (error) {
      // The others wait on the failed member's sums: end the group, then report the failure.
      await Promise.allSettled([...runs, ...this.members.map((m) => m.close())]);
      throw error;
    }
  }

  async release(seqIds: string[]): Promise<void> {
    await Promise.all(this.members.map((m) => m.release(seqIds)));
  }

  async stats(): Promise<StageStats> {
    const all = await Promise.all(this.members.map((m) => m.stats()));
    const leader = all[0]!;
    return {
      ...leader,
      kvBytes: all.reduce((n, s) => n + s.kvBytes, 0),
      kvBudgetBytes: all.reduce((n, s) => n + s.kvBudgetBytes, 0),
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.close()));
  }
}
