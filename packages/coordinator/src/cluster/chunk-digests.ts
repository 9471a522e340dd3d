/**
 * What each `shard.chunk` of a file carries: the sha256 of the file from byte 0 through
 * the chunk's end (the worker feeds each chunk to one running hash per file and checks
 * that, so every byte is hashed once on either side, and the last chunk's digest is the
 * file's own). A shard's writer records them as it writes the file (`.chunk-digests.json`,
 * @swarmbee/model's readChunkDigests), so even the first send reads without hashing; a file
 * without them is hashed as it is read to send, one pass. The digests are
 * remembered after the first send, so sending it again (another worker, a re-plan, a
 * resumed transfer) reads the file but does not hash it. Remembered per file and chunk
 * size, by the file's inode, size and modification and change times: a file changed since
 * is hashed afresh. A stale digest can only make a transfer fail, never store wrong bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fileStatKey, readChunkDigests } from '@swarmbee/model';

/** Most files whose chunk digests are remembered; the oldest is forgotten first. */
const MAX_REMEMBERED_FILES = 256;
/** Bytes read at a time when a transfer resumes mid-file without remembered digests. */
const PREFIX_READ_BYTES = 4 * 1024 * 1024;

interface Entry {
  /** The file's inode, size, mtime and ctime (ns) when its digests were taken. */
  stat: string;
  /** The file's size then, bytes. */
  bytes: number;
  /** Digest of the file's bytes [0, (i + 1) × chunkBytes) (or to its end); filled as sent. */
  digests: (string | undefined)[];
}

const remembered = new Map<string, Entry>();

async function statOf(path: string): Promise<{ key: string; bytes: number }> {
  const key = await fileStatKey(path);
  // The key is inode:size:mtime:ctime.
  return { key, bytes: Number(key.split(':')[1]) };
}

/** The digests of one file's chunks of `chunkBytes`: remembered ones, and new ones as they are taken. */
export class ChunkDigests {
  /** The running hash of the bytes handed to {@link through} so far, and where it stands. */
  #hash?: Hash;
  #hashedTo = 0;

  private constructor(
    readonly path: string,
    readonly chunkBytes: number,
    readonly entry: Entry,
  ) {}

  static async of(path: string, chunkBytes: number): Promise<ChunkDigests> {
    const key = `${chunkBytes}:${path}`;
    const now = await statOf(path);
    let entry = remembered.get(key);
    if (entry?.stat !== now.key) {
      const recorded = await readChunkDigests(dirname(path), basename(path), chunkBytes);
      entry = { stat: now.key, bytes: now.bytes, digests: recorded ?? [] };
      remembered.set(key, entry);
      if (remembered.size > MAX_REMEMBERED_FILES)
        remembered.delete(remembered.keys().next().value as string);
    }
    return new ChunkDigests(path, chunkBytes, entry);
  }

  /**
   * The sha256 of the file's bytes [0, offset + data.length), `data` being what was read
   * at `offset`. Chunks are taken in order; the first one taken may start anywhere (a
   * resume), and when its digest is not remembered the file's bytes before it are read
   * and hashed first.
   */
  async through(offset: number, data: Uint8Array): Promise<string> {
    const index = offset / this.chunkBytes;
    // Only a chunk that is exactly cell `index` of the grid (a resume may start off it, a read may come short).
    const onGrid =
      Number.isInteger(index) &&
      data.length === Math.min(this.chunkBytes, this.entry.bytes - offset);
    const known = onGrid ? this.entry.digests[index] : undefined;
    if (known !== undefined && this.#hash === undefined) return known;
    if (this.#hash === undefined || this.#hashedTo !== offset) await this.#hashUpTo(offset);
    const digest = (this.#hash as Hash).update(data).copy().digest('hex');
    this.#hashedTo = offset + data.length;
    if (onGrid) this.entry.digests[index] = digest;
    return digest;
  }

  /** Starts the running hash over the file's bytes [0, offset), read from disk. */
  async #hashUpTo(offset: number): Promise<void> {
    const hash = createHash('sha256');
    const file = await open(this.path, 'r');
    try {
      const buffer = Buffer.allocUnsafe(Math.min(PREFIX_READ_BYTES, Math.max(offset, 1)));
      for (let at = 0; at < offset; ) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, offset - at), at);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
    } finally {
      await file.close();
    }
    this.#hash = hash;
    this.#hashedTo = offset;
  }
}
