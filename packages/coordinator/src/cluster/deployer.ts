/**
 * Puts a plan onto workers: each stage's shard is offered by content address
 * and sent in chunks only to a worker that lacks it, then every stage loads,
 * connected to the next stage's data URL (the last to the coordinator). The
 * first failure (a worker lost, a deadline passed) stops the other transfers and
 * loads of the same deployment and is what the deployment rejects with. A tensor-parallel
 * stage is a group: each member gets its slice shard and a `stage.load` naming the group
 * and its rank, all at once; the previous stage sends to the group's leader.
 */
import {
  ClusterUnavailableError,
  type LlamaConfig,
  type Plan,
  type StagePlan,
  stageDevices,
} from '@swarmbee/core';
import { splitTensors } from '@swarmbee/model';
import type { PlannedStage, PlanResult } from '@swarmbee/planner';
import type { TensorGroup } from '@swarmbee/protocol';
import type { ShardStore, StoredShard } from './shard-store.js';
import { sendShard, type TransferOptions, verifyTimeoutMs } from './shard-transfer.js';
import type { WorkerLink } from './worker-link.js';

export interface DeployOptions extends TransferOptions {
  /**
   * Passed to every stage's engine. `kvBudgetBytes`, when set, is every stage's KV budget;
   * by default each stage gets the budget its plan gives it (see {@link stageKvBudget}).
   */
  stage?: { intraOpThreads?: number; maxSequences?: number; kvBudgetBytes?: number };
}

/**
 * The KV budget stage `index` of `plan` is deployed with, bytes: the one set for every
 * stage, else the planner's for the stage (its layers' KV bytes per token × the context ×
 * the sequences the plan keeps). An even plan, or one remembered from before plans carried
 * budgets, has none: the worker's own budget or the engine's default applies.
 */
export function stageKvBudget(
  plan: Plan | PlanResult,
  index: number,
  options: DeployOptions,
): number | undefined {
  if (options.stage?.kvBudgetBytes !== undefined) return options.stage.kvBudgetBytes;
  const stage = plan.stages[index] as Partial<PlannedStage> | undefined;
  return stage?.kvBudgetBytes;
}

/** What a loaded stage admits: the coordinator queues requests that would exceed it. */
export interface StageLimits {
  /** Most sequences the stage keeps a KV cache for. */
  maxSequences: number;
  /** The stage's KV-cache budget, bytes. */
  kvBudgetBytes: number;
  /** KV-cache bytes one sequence needs per position on this stage (its layers that grow, keys and values). */
  kvBytesPerPosition: number;
  /** KV-cache bytes one sequence needs whatever its length (sliding-window rings). Default 0. */
  kvBytesPerRow?: number;
}

export interface DeployedStage {
  stage: number;
  worker: string;
  layerStart: number;
  layerEnd: number;
  shardId: string;
  /** Bytes sent to the worker; 0 when its cache already held the shard. */
  transferredBytes: number;
  loadMs: number;
  /** The stage's admission limits, as its engine reports them (absent from older workers). */
  limits?: StageLimits;
  /** A tensor-parallel stage's workers by rank (`worker` leads); absent for one worker. */
  members?: string[];
}

/** One worker's part of a plan: a stage, or one member of a tensor-parallel stage. */
interface Placement {
  /** Index into the plan's stages. */
  at: number;
  link: WorkerLink;
  shard: StoredShard;
  /** A member's rank and group, for a tensor-parallel stage. */
  tensor?: { group: TensorGroup; rank: number };
}

let groupSerial = 0;

/**
 * Each stage's placements: its one worker, or its group's members by rank (each with its
 * slice shard, split by the plan's weights as `splitTensors` splits them).
 */
async function placements(
  plan: Plan | PlanResult,
  workers: ReadonlyMap<string, WorkerLink>,
  store: ShardStore,
  progress: DeployOptions['progress'],
): Promise<Placement[][]> {
  const linkOf = (stage: StagePlan, device: string) => {
    const link = workers.get(device);
    if (!link?.open)
      throw new ClusterUnavailableError(
        `plan stage ${stage.index} names worker ${device}, which is no longer connected`,
      );
    return link;
  };
  const links = plan.stages.map((stage) => stageDevices(stage).map((d) => linkOf(stage, d)));
  const placed: Placement[][] = [];
  for (const [at, stage] of plan.stages.entries()) {
    const range = { start: stage.layerStart, end: stage.layerEnd };
    const stageLinks = links[at]!;
    if (!stage.tensor) {
      placed.push([{ at, link: stageLinks[0]!, shard: await store.ensure(range, progress) }]);
      continue;
    }
    const config = store.model.manifest.config as LlamaConfig;
    const slices = splitTensors(config, {
      weights: stage.tensor.weights,
      // The last stage's head split by vocabulary when the plan says so.
      splitVocab: stage.tensor.head === 'split' && range.end === config.nLayers,
    });
    const group: TensorGroup = {
      id: `stage-${stage.index}-${process.pid}-${++groupSerial}`,
      stage: stage.index,
      members: stageLinks.map((l) => l.dataUrl),
      algorithm: stage.tensor.allReduce,
    };
    const members: Placement[] = [];
    for (const [rank, slice] of slices.entries())
      members.push({
        at,
        link: stageLinks[rank]!,
        shard: await store.ensureSlice(range, slice),
        tensor: { group, rank },
      });
    placed.push(members);
  }
  return placed;
}

export async function deployPlan(
  plan: Plan | PlanResult,
  workers: ReadonlyMap<string, WorkerLink>,
  store: ShardStore,
  coordinatorDataUrl: string,
  options: DeployOptions = {},
): Promise<DeployedStage[]> {
  const stages = await placements(plan, workers, store, options.progress);
  const all = stages.flat();
  // One failure ends the whole deployment: the other stages stop sending and waiting.
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const together = <T>(steps: Promise<T>[]): Promise<T[]> =>
    Promise.all(
      steps.map((step) =>
        step.catch((error: unknown) => {
          failed.abort(error);
          throw error;
        }),
      ),
    );
  const kvBudgets = plan.stages.map((_, i) => stageKvBudget(plan, i, options));
  // Each worker judges its shard plus KV budget against its memory before a byte arrives.
  const transferred = await together(
    all.map((p) =>
      sendShard(p.link, p.shard, {
        ...options,
        ...(kvBudgets[p.at] === undefined ? {} : { kvBudgetBytes: kvBudgets[p.at] }),
        signal,
      }),
    ),
  );
  // Every member of a group loads at once: each waits for the others' links.
  const loaded = await together(
    all.map(async (p) => {
      const stage = plan.stages[p.at]!;
      const shardId = p.shard.manifest.shardId;
      // Loading verifies every byte of the shard before onnxruntime reads it.
      const timeoutMs = verifyTimeoutMs(
        p.shard.files.reduce((n, f) => n + f.bytes, 0),
        options,
      );
      const isLast = p.at === plan.stages.length - 1;
      const leads = (p.tensor?.rank ?? 0) === 0;
      const nextUrl = isLast ? coordinatorDataUrl : stages[p.at + 1]![0]!.link.dataUrl;
      return p.link.exchange(
        {
          type: 'stage.load',
          stage: stage.index,
          layerStart: stage.layerStart,
          layerEnd: stage.layerEnd,
          shardId,
          ...(leads ? { nextUrl } : {}),
          isFirst: p.at === 0,
          isLast,
          ...(p.tensor ? { tensor: p.tensor } : {}),
          options: {
            ...options.stage,
            ...(kvBudgets[p.at] === undefined ? {} : { kvBudgetBytes: kvBudgets[p.at] }),
          },
        },
        'stage.ready',
        (m) => m.stage === stage.index,
        { timeoutMs, signal },
      );
    }),
  );
  let next = 0;
  return stages.map((members) => {
    const first = next;
    next += members.length;
    const ready = loaded.slice(first, next);
    const stage = plan.stages[members[0]!.at]!;
    // A group admits what its most loaded member admits.
    const limits = ready
      .flatMap((r) => (r.limits ? [r.limits] : []))
      .reduce<StageLimits | undefined>(
        (a, b) => (a === undefined || b.kvBytesPerPosition > a.kvBytesPerPosition ? b : a),
        undefined,
      );
    return {
      stage: stage.index,
      worker: members[0]!.link.name,
      layerStart: stage.layerStart,
      layerEnd: stage.layerEnd,
      shardId: members[0]!.shard.manifest.shardId,
      transferredBytes: transferred.slice(first, next).reduce((n, b) => n + b, 0),
      loadMs: Math.max(...ready.map((r) => r.loadMs)),
      ...(limits ? { limits } : {}),
      ...(stage.tensor ? { members: members.map((m) => m.link.name) } : {}),
    };
  });
}
