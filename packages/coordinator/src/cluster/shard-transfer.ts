/**
 * One shard to one worker, by content address: offer it, and stream it only if the
 * worker lacks it — from where an interrupted transfer left off, when the worker kept
 * the chunks it verified (`shard.need.verified`). Every chunk carries the sha256 of its
 * file from byte 0 through it (see ChunkDigests); a chunk
 * the worker refuses as corrupt is sent again (the shard is offered again and the worker
 * answers from its last verified chunk), at most `maxCorruptResends` times.
 *
 * No wait on this path has a total-time deadline. The stream's deadline is about progress
 * — it passes when no chunk has been taken by the socket for `transferStallTimeoutMs` —
 * so a 4 GB shard on a 100 Mbit/s link takes its six minutes, while a stalled one is
 * given up after the stall timeout. The two replies that may follow work proportional to
 * the shard (before `shard.need` the worker reads and hashes a cached copy it cannot vouch
 * for, or the prefix of an interrupted transfer; before `shard.stored`, on a slow disk,
 * the writes still queued) wait `stepTimeoutMs` plus the shard's bytes at
 * `verifyBytesPerSecond`.
 */
import { basename, join } from 'node:path';
import { asSwarmBeeError, ProgressDeadline, ShardChunkCorruptError } from '@swarmbee/core';
import { type ProgressFn, SHARD_CHUNK_BYTES } from '@swarmbee/model';
import type { ShardFile, ShardNeedMessage } from '@swarmbee/protocol';
import { ChunkDigests } from './chunk-digests.js';
import { fileChunks } from './shard-store.js';
import type { WorkerLink } from './worker-link.js';

export interface TransferOptions {
  /** Bytes per shard.chunk frame. Default 1 MiB. */
  chunkBytes?: number;
  /** Longest wait for any one worker reply that does not grow with the shard (stage.ready adds verification), ms. Default 120000. */
  stepTimeoutMs?: number;
  /** Give a shard transfer up when no chunk went out for this long, ms. Default 30000. */
  transferStallTimeoutMs?: number;
  /**
   * The slowest a worker is expected to read and hash its shard files (an SD card),
   * bytes/s: replies that wait on that get `bytes / verifyBytesPerSecond` on top of
   * `stepTimeoutMs`. Default 20 MB/s.
   */
  verifyBytesPerSecond?: number;
  /** Times a chunk refused as corrupt is sent again before the transfer fails. Default 3. */
  maxCorruptResends?: number;
  /** The KV-cache budget the stage will load with, told to the worker with the offer so it can refuse what does not fit. */
  kvBudgetBytes?: number;
  progress?: ProgressFn;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** A shard's writer records its chunk digests at this size (SHARD_CHUNK_BYTES). */
export const DEFAULT_CHUNK_BYTES = SHARD_CHUNK_BYTES;
export const DEFAULT_STEP_TIMEOUT_MS = 120_000;
export const DEFAULT_TRANSFER_STALL_TIMEOUT_MS = 30_000;
export const DEFAULT_VERIFY_BYTES_PER_SECOND = 20e6;
export const DEFAULT_MAX_CORRUPT_RESENDS = 3;

/** What a transfer needs of a shard: its content address, its directory and its files (a StoredShard is one). */
export interface TransferableShard {
  path: string;
  manifest: { shardId: string };
  files: ShardFile[];
}

/** The wait for a reply the worker sends after reading and hashing `bytes`, ms. */
export function verifyTimeoutMs(bytes: number, options: TransferOptions): number {
  const rate = options.verifyBytesPerSecond ?? DEFAULT_VERIFY_BYTES_PER_SECOND;
  return (options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS) + Math.ceil((bytes / rate) * 1000);
}

/**
 * Offers a shard; sends it only if the worker needs it, and only what it needs.
 * Resolves with the bytes sent (chunks sent again after a refusal counted again).
 */
export async function sendShard(
  link: WorkerLink,
  shard: TransferableShard,
  options: TransferOptions,
): Promise<number> {
  const { shardId } = shard.manifest;
  const { files } = shard;
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const verifying = { timeoutMs: verifyTimeoutMs(bytes, options), signal: options.signal };
  const maxResends = options.maxCorruptResends ?? DEFAULT_MAX_CORRUPT_RESENDS;
  // Bytes sent so far, over every pass (a pass a refusal cut short included).
  const sent = { bytes: 0 };
  for (let resends = 0; ; resends++) {
    const need = await link.exchange(
      {
        type: 'shard.offer',
        shardId,
        bytes,
        files,
        ...(options.kvBudgetBytes === undefined ? {} : { kvBudgetBytes: options.kvBudgetBytes }),
      },
      'shard.need',
      (m) => m.shardId === shardId,
      verifying,
    );
    if (need.have) {
      options.log?.(
        `worker ${link.name} has shard ${shardId.slice(0, 12)} in its cache: no transfer`,
      );
      return sent.bytes;
    }
    try {
      await streamChunks(link, shard, need, sent, options);
      await link.exchange(
        { type: 'shard.done', shardId },
        'shard.stored',
        (m) => m.shardId === shardId,
        verifying,
      );
      options.log?.(
        `sent shard ${shardId.slice(0, 12)} (${bytes} bytes, ${sent.bytes} sent) to worker ${link.name}`,
      );
      return sent.bytes;
    } catch (error) {
      const coded = asSwarmBeeError(error);
      if (coded.code !== ShardChunkCorruptError.code || resends >= maxResends) throw coded;
      options.log?.(`worker ${link.name} refused a chunk: ${coded.message}; sending it again`);
    }
  }
}

/** Where each file starts: what the worker holds verified of it, else 0. */
function startsOf(need: ShardNeedMessage): Map<string, number> {
  return new Map((need.verified ?? []).map((v) => [v.file, v.bytes]));
}

/** Streams every byte the worker lacks, at the link's pace, counting them into `sent`. */
async function streamChunks(
  link: WorkerLink,
  shard: TransferableShard,
  need: ShardNeedMessage,
  total: { bytes: number },
  options: TransferOptions,
): Promise<void> {
  const { shardId } = shard.manifest;
  const bytes = shard.files.reduce((n, f) => n + f.bytes, 0);
  const starts = startsOf(need);
  const held = shard.files.reduce((n, f) => n + Math.min(starts.get(f.name) ?? 0, f.bytes), 0);
  if (held > 0)
    options.log?.(
      `worker ${link.name} holds ${held} of ${bytes} bytes of shard ${shardId.slice(0, 12)} from an interrupted transfer: sending the rest`,
    );
  const deadline = new ProgressDeadline(
    options.transferStallTimeoutMs ?? DEFAULT_TRANSFER_STALL_TIMEOUT_MS,
    `sending shard ${shardId.slice(0, 12)} to worker ${link.name}`,
    options.signal,
  );
  // A chunk the worker could not take is reported as an error: stop sending at once.
  const stopOnError = link.onError((error) => deadline.abort(error));
  let sent = 0;
  try {
    for (const file of shard.files) {
      const start = starts.get(file.name) ?? 0;
      if (start >= file.bytes) continue;
      const path = join(shard.path, file.name);
      const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
      const digests = await ChunkDigests.of(path, chunkBytes);
      for await (const { offset, data } of fileChunks(path, chunkBytes, start)) {
        deadline.check();
        const sha256 = await digests.through(offset, data);
        // write() waits for the socket to drain: the file streams at the link's pace, not into memory.
        await link.channel.write(
          { type: 'shard.chunk', shardId, file: basename(file.name), offset, data, sha256 },
          { signal: deadline.signal },
        );
        deadline.kick();
        sent += data.byteLength;
        total.bytes += data.byteLength;
        options.progress?.({
          phase: `send shard to ${link.name}`,
          done: held + sent,
          total: bytes,
          unit: 'bytes',
        });
      }
    }
    // A refusal of the last chunks may be on its way: shard.done would not be answered.
    deadline.check();
  } finally {
    stopOnError();
    deadline.dispose();
  }
}
