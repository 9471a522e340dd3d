/**
 * One shard to one worker, by content address: offer it, and stream it only if the
 * worker lacks it. The stream's deadline is about progress — it passes when no chunk
 * has been taken by the socket for `transferStallTimeoutMs` — so a 2 GB shard on a
 * 100 Mbit/s link takes its three minutes without timing out, while a stalled one is
 * given up after the stall timeout. Each reply (need, stored) has its own step deadline.
 */
import { basename, join } from 'node:path';
import { ProgressDeadline } from '@swarmbee/core';
import type { ProgressFn } from '@swarmbee/model';
import { fileChunks, type StoredShard } from './shard-store.js';
import type { WorkerLink } from './worker-link.js';

export interface TransferOptions {
  /** Bytes per shard.chunk frame. Default 1 MiB. */
  chunkBytes?: number;
  /** Longest wait for any one worker reply (shard.need, shard.stored, stage.ready), ms. Default 120000. */
  stepTimeoutMs?: number;
  /** Give a shard transfer up when no chunk went out for this long, ms. Default 30000. */
  transferStallTimeoutMs?: number;
  progress?: ProgressFn;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_STEP_TIMEOUT_MS = 120_000;
export const DEFAULT_TRANSFER_STALL_TIMEOUT_MS = 30_000;

/** Offers a shard; sends it only if the worker needs it. Resolves with the bytes sent. */
export async function sendShard(
  link: WorkerLink,
  shard: StoredShard,
  options: TransferOptions,
): Promise<number> {
  const { shardId } = shard.manifest;
  const { files } = shard;
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const step = {
    timeoutMs: options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
    signal: options.signal,
  };
  const need = await link.exchange(
    { type: 'shard.offer', shardId, bytes, files },
    'shard.need',
    (m) => m.shardId === shardId,
    step,
  );
  if (need.have) {
    options.log?.(
      `worker ${link.name} has shard ${shardId.slice(0, 12)} in its cache: no transfer`,
    );
    return 0;
  }
  const stallMs = options.transferStallTimeoutMs ?? DEFAULT_TRANSFER_STALL_TIMEOUT_MS;
  const deadline = new ProgressDeadline(
    stallMs,
    `sending shard ${shardId.slice(0, 12)} to worker ${link.name}`,
    options.signal,
  );
  // A chunk the worker could not store is reported as an error: stop sending at once.
  const stopOnError = link.onError((error) => deadline.abort(error));
  let sent = 0;
  try {
    for (const file of files) {
      for await (const { offset, data } of fileChunks(
        join(shard.path, file.name),
        options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
      )) {
        deadline.check();
        // write() waits for the socket to drain: the file streams at the link's pace, not into memory.
        await link.channel.write(
          { type: 'shard.chunk', shardId, file: basename(file.name), offset, data },
          { signal: deadline.signal },
        );
        deadline.kick();
        sent += data.byteLength;
        options.progress?.({
          phase: `send shard to ${link.name}`,
          done: sent,
          total: bytes,
          unit: 'bytes',
        });
      }
    }
  } finally {
    stopOnError();
    deadline.dispose();
  }
  await link.exchange(
    { type: 'shard.done', shardId },
    'shard.stored',
    (m) => m.shardId === shardId,
    step,
  );
  options.log?.(`sent shard ${shardId.slice(0, 12)} (${bytes} bytes) to worker ${link.name}`);
  return sent;
}
