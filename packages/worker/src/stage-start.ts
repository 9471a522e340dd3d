/**
 * Starting a stage a worker was told to load: its verified shard opened and run by a
 * threaded engine (a tensor-parallel member's: member-start.ts) (under the benchmarks' device emulation, if any), connected to the
 * next stage (or the coordinator, after the last), and served by a StageRunner.
 */
import type { AllReduce, SwarmBeeError } from '@swarmbee/core';
import { type StageEngine, ThreadedStage } from '@swarmbee/engine';
import { openShard } from '@swarmbee/model';
import { connectShaped, type StageLoadMessage, type TensorGroup } from '@swarmbee/protocol';
import { startMember } from './member-start.js';
import { StageRunner } from './stage-runner.js';
import { engineOptions, type WorkerOptions } from './worker-options.js';

export interface StageStartContext {
  /** The worker's name, for its data-plane connection. */
  name: string;
  options: WorkerOptions;
  /** Reports a batch the stage could not run. */
  reportFailure: (batchId: number, error: SwarmBeeError) => void;
  /** Joins a tensor-parallel group (for a `stage.load` with `tensor`). */
  joinGroup: (group: TensorGroup, rank: number) => Promise<AllReduce>;
}

/** A running stage, and where its results go. */
export interface StartedStage {
  runner: StageRunner;
  /** Where its results go (a member other than the leader: the leader, which sends them on). */
  nextUrl: string;
  /** What the engine admits (its KV budget), for the coordinator's scheduler. */
  limits: StageEngine['info']['limits'];
}

/** Runs the shard at `path` as the stage `load` names; nothing is left open if it fails. */
export async function startStage(
  load: StageLoadMessage,
  path: string,
  context: StageStartContext,
): Promise<StartedStage> {
  if (load.tensor) return startMember(load, path, context, context.joinGroup);
  const { options } = context;
  const { graph } = await openShard(path);
  // The graph read for this stage alone moves into its thread: one copy of it fewer.
  let engine: StageEngine = await ThreadedStage.create(
    graph,
    { ...load.options, ...engineOptions(options) },
    { moveGraph: true },
  );
  if (options.emulation) engine = options.emulation.wrap(engine);
  const nextUrl = load.nextUrl ?? options.coordinatorUrl;
  try {
    const downstream = await connectShaped(
      nextUrl,
      {
        ...options.channel,
        token: options.token,
        role: 'stage',
        name: `${context.name}/stage-${load.stage}`,
        tls: options.tls?.client,
      },
      options.linkShape,
    );
    const runner = new StageRunner({
      stage: load.stage,
      engine,
      downstream,
      reportFailure: context.reportFailure,
    });
    return { runner, nextUrl, limits: engine.info.limits };
  } catch (error) {
    await engine.close().catch(() => {});
    throw error;
  }
}
