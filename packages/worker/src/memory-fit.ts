/**
 * Whether a stage fits this worker's memory, judged before a byte of its shard is
 * received or loaded: its shard (the weights onnxruntime will hold), its KV-cache budget
 * and a fixed allowance for the runtime must fit in the memory free now plus what the
 * stage it replaces holds. A stage that does not fit is refused with MEMORY_SHORT
 * naming every number, instead of being loaded until the kernel kills the worker.
 */
import { freemem } from 'node:os';
import { MemoryShortError } from '@swarmbee/core';
import { DEFAULT_KV_BUDGET_BYTES } from '@swarmbee/engine';

/**
 * Memory a loaded stage needs beyond its weights and KV cache, bytes: onnxruntime's
 * session and arenas, the worker thread and its buffers (issue 16 bounds a worker at
 * shard + KV budget + 250 MB).
 */
export const STAGE_OVERHEAD_BYTES = 250 * 1024 * 1024;

export interface StageMemory {
  /** The shard's bytes on disk (its weights). */
  shardBytes: number;
  /** The KV-cache budget the stage would serve with. */
  kvBudgetBytes: number;
}

export interface MemoryAtHand {
  /** Memory free now (the kernel's available memory). Default: `os.freemem()`. */
  freeBytes?: number;
  /** What the stage this one replaces holds (freed before loading). Default 0. */
  releasedBytes?: number;
  /** The worker's own ceiling for weights plus KV cache (`--memory-limit-mib`), when set. */
  limitBytes?: number | undefined;
  /** The worker's own KV budget (`--kv-budget-mib`), when set: it replaces the one a plan sends. */
  ownKvBudgetBytes?: number | undefined;
}

/** Bytes the stage needs in all. */
export function stageMemoryBytes(stage: StageMemory): number {
  return stage.shardBytes + stage.kvBudgetBytes + STAGE_OVERHEAD_BYTES;
}

/** The KV budget a stage serves with: the worker's own setting, else the coordinator's, else the engine's. */
export function kvBudgetOf(workerBytes?: number, coordinatorBytes?: number): number {
  return workerBytes ?? coordinatorBytes ?? DEFAULT_KV_BUDGET_BYTES;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** @throws MemoryShortError naming the shard, the KV budget, the free memory and the shortfall. */
export function checkMemoryFit(
  worker: string,
  shardId: string,
  stage: StageMemory,
  atHand: MemoryAtHand = {},
): void {
  const free = (atHand.freeBytes ?? freemem()) + (atHand.releasedBytes ?? 0);
  // The limit covers weights and KV cache; the runtime's allowance comes on top of it.
  const ceiling = atHand.limitBytes === undefined ? free : atHand.limitBytes + STAGE_OVERHEAD_BYTES;
  const usable = Math.min(free, ceiling);
  const needed = stageMemoryBytes(stage);
  if (needed <= usable) return;
  const limited = ceiling < free;
  // What a new plan may give this worker: its own KV budget is not the plan's to shrink.
  const capacityBytes = Math.max(
    0,
    Math.floor(usable - STAGE_OVERHEAD_BYTES - (atHand.ownKvBudgetBytes ?? 0)),
  );
  throw new MemoryShortError(
    `worker ${worker} cannot hold shard ${shardId.slice(0, 12)}: shard ${stage.shardBytes} bytes (${mb(stage.shardBytes)}) + KV budget ${stage.kvBudgetBytes} bytes (${mb(stage.kvBudgetBytes)}) + runtime ${STAGE_OVERHEAD_BYTES} bytes = ${needed} bytes (${mb(needed)}), but ${limited ? 'its memory limit (plus the runtime allowance) is' : 'it has free'} ${usable} bytes (${mb(usable)}): ${needed - usable} bytes (${mb(needed - usable)}) short; give it a smaller stage or KV budget (--kv-budget-mib), or free memory`,
    { memory: { worker, neededBytes: Math.ceil(needed), capacityBytes } },
  );
}
