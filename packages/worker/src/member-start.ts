/**
 * Starting a tensor-parallel member a worker was told to load: its slice shard opened, the
 * group joined (the `DataPlaneAllReduce` lives on this main thread, beside the group's
 * links), and a `TensorMemberStage` started on a stage thread whose sums cross to that
 * member through a MessagePort (`serveAllReduce`). The leader (rank 0) also dials every
 * other member's data-plane URL and hands each the frames it receives; it sends the
 * stage's output on. The others send nothing: their outputs are dropped.
 */
import { MessageChannel } from 'node:worker_threads';
import {
  type AllReduce,
  asSwarmBeeError,
  ContextOverflowError,
  InvalidArgumentError,
  ShardInvalidError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import {
  type StageBatch,
  type StageEngine,
  type StageOutput,
  type StageStats,
  serveAllReduce,
  ThreadedStage,
} from '@swarmbee/engine';
import { openSliceShard } from '@swarmbee/model';
import {
  type Channel,
  connectShaped,
  type StageLoadMessage,
  type TensorGroup,
} from '@swarmbee/protocol';
import { StageRunner } from './stage-runner.js';
import type { StageStartContext, StartedStage } from './stage-start.js';
import { engineOptions } from './worker-options.js';

/**
 * Refusals of a batch every member makes alike, checking the same frame against the same
 * config before its first sum: the group stays whole.
 */
const BATCH_REFUSALS: ReadonlySet<string> = new Set([
  InvalidArgumentError.code,
  TokenOutOfVocabularyError.code,
  ContextOverflowError.code,
]);

/** A member's stage engine and its place in the group: leaving the group goes with closing. */
class GroupMemberStage implements StageEngine {
  constructor(
    readonly engine: StageEngine,
    readonly member: AllReduce,
  ) {}

  get info() {
    return this.engine.info;
  }

  async forward(batch: StageBatch): Promise<StageOutput> {
    try {
      return await this.engine.forward(batch);
    } catch (error) {
      // The others wait on this member's sums: leaving tells them (GROUP_MEMBER_LOST) —
      // unless every member refused the batch alike before its first sum.
      if (!BATCH_REFUSALS.has(asSwarmBeeError(error).code))
        await this.member.close().catch(() => {});
      throw error;
    }
  }

  release(seqIds: string[]): Promise<void> {
    return this.engine.release(seqIds);
  }

  stats(): Promise<StageStats> {
    return this.engine.stats();
  }

  async close(): Promise<void> {
    try {
      await this.engine.close();
    } finally {
      await this.member.close();
    }
  }
}

/** Runs the member shard at `path` as `load.tensor` says; nothing is left open if it fails. */
export async function startMember(
  load: StageLoadMessage,
  path: string,
  context: StageStartContext,
  join: (group: TensorGroup, rank: number) => Promise<AllReduce>,
): Promise<StartedStage> {
  const { options } = context;
  const { group, rank } = load.tensor!;
  const { shard } = await openSliceShard(path);
  const { slice } = shard;
  if (
    slice.rank !== rank ||
    slice.degree !== group.members.length ||
    shard.layerStart !== load.layerStart ||
    shard.layerEnd !== load.layerEnd
  )
    throw new ShardInvalidError(
      `shard ${load.shardId.slice(0, 12)} holds member ${slice.rank} of ${slice.degree} for layers [${shard.layerStart}, ${shard.layerEnd}); stage ${load.stage} asked for member ${rank} of ${group.members.length} for [${load.layerStart}, ${load.layerEnd})`,
    );
  const member = await join(group, rank);
  const { port1, port2 } = new MessageChannel();
  serveAllReduce(port1, member);
  let engine: StageEngine;
  try {
    engine = new GroupMemberStage(
      // An emulated device paces the member's segments in its thread, not its waits for sums.
      await ThreadedStage.createMember(
        shard,
        { port: port2, rank, size: group.members.length },
        { ...load.options, ...engineOptions(options) },
        // An emulated device paces each segment in the member's thread, not the whole forward:
        // the waits for the group's sums are not slower on a slower device.
        options.emulation?.snapshot(),
      ),
      member,
    );
  } catch (error) {
    port1.close();
    await member.close().catch(() => {});
    throw error;
  }
  const links: Channel<'data'>[] = [];
  const dial = (url: string, as: string) =>
    connectShaped(
      url,
      {
        ...options.channel,
        token: options.token,
        role: 'stage',
        name: `${context.name}/stage-${load.stage}${as}`.slice(0, 128),
        tls: options.tls?.client,
      },
      options.linkShape,
    );
  try {
    if (rank > 0) {
      const runner = new StageRunner({
        stage: load.stage,
        engine,
        reportFailure: context.reportFailure,
      });
      return { runner, nextUrl: group.members[0]!, limits: engine.info.limits };
    }
    for (const [r, url] of group.members.entries())
      if (r > 0) links.push(await dial(url, `/member-${r}`));
    const nextUrl = load.nextUrl ?? options.coordinatorUrl;
    const downstream = await dial(nextUrl, '');
    const runner = new StageRunner({
      stage: load.stage,
      engine,
      downstream,
      members: links,
      reportFailure: context.reportFailure,
    });
    return { runner, nextUrl, limits: engine.info.limits };
  } catch (error) {
    for (const link of links) link.close(1001, 'stage not loaded');
    await engine.close().catch(() => {});
    throw error;
  }
}
