/**
 * Puts a plan onto workers: each stage's shard is offered by content address
 * and sent in chunks only to a worker that lacks it, then every stage loads,
 * connected to the next stage's data URL (the last to the coordinator).
 */
import { basename, join } from 'node:path';
import type { Plan } from '@swarmbee/core';
import { StageLayoutError } from '@swarmbee/core';
import type { ProgressFn } from '@swarmbee/model';
import { fileChunks, type ShardStore, type StoredShard } from './shard-store.js';
import type { WorkerLink } from './worker-link.js';

export interface DeployOptions {
  /** Bytes per shard.chunk frame. Default 1 MiB. */
  chunkBytes?: number;
  /** Longest wait for any one worker reply, ms. Default 120000. */
  stepTimeoutMs?: number;
  /** Passed to every stage's engine. */
  stage?: { intraOpThreads?: number; maxSequences?: number; kvBudgetBytes?: number };
  progress?: ProgressFn;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_STEP_TIMEOUT_MS = 120_000;

export interface DeployedStage {
  stage: number;
  worker: string;
  layerStart: number;
  layerEnd: number;
  shardId: string;
  /** Bytes sent to the worker; 0 when its cache already held the shard. */
  transferredBytes: number;
  loadMs: number;
}

export async function deployPlan(
  plan: Plan,
  workers: ReadonlyMap<string, WorkerLink>,
  store: ShardStore,
  coordinatorDataUrl: string,
  options: DeployOptions = {},
): Promise<DeployedStage[]> {
  const timeoutMs = options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const links = plan.stages.map((stage) => {
    const link = workers.get(stage.device);
    if (!link?.open)
      throw new StageLayoutError(
        `plan stage ${stage.index} names worker ${stage.device}, which is not connected`,
      );
    return link;
  });
  const shards: StoredShard[] = [];
  for (const stage of plan.stages)
    shards.push(
      await store.ensure({ start: stage.layerStart, end: stage.layerEnd }, options.progress),
    );
  const transferred = await Promise.all(
    plan.stages.map((_, i) => sendShard(links[i]!, shards[i]!, options, timeoutMs)),
  );
  const loads = plan.stages.map(async (stage, i) => {
    const link = links[i]!;
    const shardId = shards[i]!.manifest.shardId;
    const isLast = i === plan.stages.length - 1;
    const ready = link.expect('stage.ready', (m) => m.stage === stage.index, {
      timeoutMs,
      signal: options.signal,
    });
    link.channel.send({
      type: 'stage.load',
      stage: stage.index,
      layerStart: stage.layerStart,
      layerEnd: stage.layerEnd,
      shardId,
      nextUrl: isLast ? coordinatorDataUrl : links[i + 1]!.dataUrl,
      isFirst: i === 0,
      isLast,
      options: options.stage ?? {},
    });
    const { loadMs } = await ready;
    return {
      stage: stage.index,
      worker: link.name,
      layerStart: stage.layerStart,
      layerEnd: stage.layerEnd,
      shardId,
      transferredBytes: transferred[i]!,
      loadMs,
    };
  });
  return Promise.all(loads);
}

/** Offers a shard; sends it only if the worker needs it. Resolves with the bytes sent. */
export async function sendShard(
  link: WorkerLink,
  shard: StoredShard,
  options: DeployOptions,
  timeoutMs: number,
): Promise<number> {
  const { shardId } = shard.manifest;
  const { files } = shard;
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const need = link.expect('shard.need', (m) => m.shardId === shardId, {
    timeoutMs,
    signal: options.signal,
  });
  link.channel.send({ type: 'shard.offer', shardId, bytes, files });
  if ((await need).have) {
    options.log?.(
      `worker ${link.name} has shard ${shardId.slice(0, 12)} in its cache: no transfer`,
    );
    return 0;
  }
  const stored = link.expect('shard.stored', (m) => m.shardId === shardId, {
    timeoutMs,
    signal: options.signal,
  });
  let sent = 0;
  for (const file of files) {
    for await (const { offset, data } of fileChunks(
      join(shard.path, file.name),
      options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    )) {
      // write() waits for the socket to drain: the file streams at the link's pace, not into memory.
      await link.channel.write(
        { type: 'shard.chunk', shardId, file: basename(file.name), offset, data },
        { signal: options.signal },
      );
      sent += data.byteLength;
      options.progress?.({
        phase: `send shard to ${link.name}`,
        done: sent,
        total: bytes,
        unit: 'bytes',
      });
    }
  }
  link.channel.send({ type: 'shard.done', shardId });
  await stored;
  options.log?.(`sent shard ${shardId.slice(0, 12)} (${bytes} bytes) to worker ${link.name}`);
  return sent;
}
