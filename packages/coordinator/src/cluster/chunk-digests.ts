/**
 * The sha256 of each chunk of a shard file, remembered after the first time the file is
 * sent, so sending it again (another worker, a re-plan, a resumed transfer) reads the file
 * but does not hash it. Remembered per file and chunk size, by the file's inode, size and
 * modification and change times: a file changed since is hashed afresh. The worker checks
 * every chunk against its digest and the whole file against the offer's sha256, so a
 * stale digest can only make a transfer fail, never store wrong bytes.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';

/** Most files whose chunk digests are remembered; the oldest is forgotten first. */
const MAX_REMEMBERED_FILES = 256;

interface Entry {
  /** The file's inode, size, mtime and ctime (ns) when its digests were taken. */
  stat: string;
  /** The file's size then, bytes. */
  bytes: number;
  /** Digest of chunk i, covering [i × chunkBytes, (i + 1) × chunkBytes); filled as sent. */
  digests: (string | undefined)[];
}

const remembered = new Map<string, Entry>();

async function statOf(path: string): Promise<{ key: string; bytes: number }> {
  const s = await stat(path, { bigint: true });
  return { key: `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, bytes: Number(s.size) };
}

/** The digests of one file's chunks of `chunkBytes`: remembered ones, and new ones as they are taken. */
export class ChunkDigests {
  private constructor(
    readonly chunkBytes: number,
    readonly entry: Entry,
  ) {}

  static async of(path: string, chunkBytes: number): Promise<ChunkDigests> {
    const key = `${chunkBytes}:${path}`;
    const now = await statOf(path);
    let entry = remembered.get(key);
    if (entry?.stat !== now.key) {
      entry = { stat: now.key, bytes: now.bytes, digests: [] };
      remembered.set(key, entry);
      if (remembered.size > MAX_REMEMBERED_FILES)
        remembered.delete(remembered.keys().next().value as string);
    }
    return new ChunkDigests(chunkBytes, entry);
  }

  /** The sha256 of `data`, read at `offset`: remembered when the chunk is a whole one of the grid. */
  of(offset: number, data: Uint8Array): string {
    const index = offset / this.chunkBytes;
    // Only a chunk that is exactly cell `index` of the grid (a resume may start off it, a read may come short).
    const onGrid =
      Number.isInteger(index) &&
      data.length === Math.min(this.chunkBytes, this.entry.bytes - offset);
    const known = onGrid ? this.entry.digests[index] : undefined;
    if (known !== undefined) return known;
    const digest = createHash('sha256').update(data).digest('hex');
    if (onGrid) this.entry.digests[index] = digest;
    return digest;
  }
}
