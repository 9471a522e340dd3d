/**
 * Puts a plan onto workers: each stage's shard is offered by content address
 * and sent in chunks only to a worker that lacks it, then every stage loads,
 * connected to the next stage's data URL (the last to the coordinator). The
 * first failure (a worker lost, a deadline passed) stops the other transfers and
 * loads of the same deployment and is what the deployment rejects with.
 */
import type { Plan } from '@swarmbee/core';
import { ClusterUnavailableError } from '@swarmbee/core';
import type { PlannedStage, PlanResult } from '@swarmbee/planner';
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
}

export async function deployPlan(
  plan: Plan | PlanResult,
  workers: ReadonlyMap<string, WorkerLink>,
  store: ShardStore,
  coordinatorDataUrl: string,
  options: DeployOptions = {},
): Promise<DeployedStage[]> {
  const links = plan.stages.map((stage) => {
    const link = workers.get(stage.device);
    if (!link?.open)
      throw new ClusterUnavailableError(
        `plan stage ${stage.index} names worker ${stage.device}, which is no longer connected`,
      );
    return link;
  });
  const shards: StoredShard[] = [];
  for (const stage of plan.stages)
    shards.push(
      await store.ensure({ start: stage.layerStart, end: stage.layerEnd }, options.progress),
    );
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
  // Each worker judges its stage's shard plus KV budget against its memory before a byte arrives.
  const transferred = await together(
    plan.stages.map((_, i) =>
      sendShard(links[i]!, shards[i]!, {
        ...options,
        ...(kvBudgets[i] === undefined ? {} : { kvBudgetBytes: kvBudgets[i] }),
        signal,
      }),
    ),
  );
  return together(
    plan.stages.map(async (stage, i): Promise<DeployedStage> => {
      const link = links[i]!;
      const shardId = shards[i]!.manifest.shardId;
      // Loading verifies every byte of the shard before onnxruntime reads it.
      const timeoutMs = verifyTimeoutMs(
        shards[i]!.files.reduce((n, f) => n + f.bytes, 0),
        options,
      );
      const isLast = i === plan.stages.length - 1;
      const ready = await link.exchange(
        {
          type: 'stage.load',
          stage: stage.index,
          layerStart: stage.layerStart,
          layerEnd: stage.layerEnd,
          shardId,
          nextUrl: isLast ? coordinatorDataUrl : links[i + 1]!.dataUrl,
          isFirst: i === 0,
          isLast,
          options: {
            ...options.stage,
            ...(kvBudgets[i] === undefined ? {} : { kvBudgetBytes: kvBudgets[i] }),
          },
        },
        'stage.ready',
        (m) => m.stage === stage.index,
        { timeoutMs, signal },
      );
      return {
        stage: stage.index,
        worker: link.name,
        layerStart: stage.layerStart,
        layerEnd: stage.layerEnd,
        shardId,
        transferredBytes: transferred[i]!,
        loadMs: ready.loadMs,
        ...(ready.limits ? { limits: ready.limits } : {}),
      };
    }),
  );
}
