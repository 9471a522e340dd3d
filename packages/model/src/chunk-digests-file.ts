/**
 * The chunk digests a shard's writer records beside it (`.chunk-digests.json`), so its
 * first transfer reads and sends without hashing: for each file, the sha256 of its bytes
 * from 0 through the end of each transfer chunk (what a `shard.chunk` carries), taken in
 * the same pass as the file's own hash. They are kept with each file's inode, size and
 * modification and change times when written; a file changed since is not vouched for
 * (the sender hashes it afresh). The file is not one of the shard's: it is never sent, and
 * a wrong digest could only make a transfer fail (the worker checks every chunk), never
 * store wrong bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes per `shard.chunk` of a transfer: what the recorded digests are taken at. */
export const SHARD_CHUNK_BYTES = 1024 * 1024;
/** Written beside a shard's files: their chunk digests (not a shard file; never sent). */
export const CHUNK_DIGESTS_FILE = '.chunk-digests.json';

interface RecordedFile {
  /** The file's inode, size, mtime and ctime (ns) once written: see {@link fileStatKey}. */
  stat: string;
  /** Digest of the file's bytes [0, (i + 1) × chunkBytes) (or to its end), for each chunk i. */
  digests: string[];
}

interface RecordedDigests {
  chunkBytes: number;
  files: Record<string, RecordedFile>;
}

/** What identifies a file's bytes without reading them: inode, size, mtime and ctime (ns). */
export async function fileStatKey(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** One running sha256 of a file as it is written, and its digest at every chunk boundary. */
export class ChunkedSha256 {
  readonly #hash: Hash = createHash('sha256');
  readonly digests: string[] = [];
  /** Bytes fed since the last chunk boundary. */
  #inChunk = 0;

  constructor(readonly chunkBytes: number = SHARD_CHUNK_BYTES) {}

  update(data: Uint8Array): void {
    for (let at = 0; at < data.length; ) {
      const take = Math.min(data.length - at, this.chunkBytes - this.#inChunk);
      this.#hash.update(data.subarray(at, at + take));
      at += take;
      this.#inChunk += take;
      if (this.#inChunk === this.chunkBytes) {
        this.digests.push(this.#hash.copy().digest('hex'));
        this.#inChunk = 0;
      }
    }
  }

  /** The whole file's sha256 (the last, short chunk's digest recorded too). */
  digest(): string {
    const whole = this.#hash.digest('hex');
    if (this.#inChunk > 0) this.digests.push(whole);
    return whole;
  }
}

/** Records the chunk digests of files written to `dir` (call once they are closed). */
export async function writeChunkDigests(
  dir: string,
  chunkBytes: number,
  files: { name: string; digests: string[] }[],
): Promise<void> {
  const recorded: RecordedDigests = { chunkBytes, files: {} };
  for (const { name, digests } of files)
    recorded.files[name] = { stat: await fileStatKey(join(dir, name)), digests };
  await writeFile(join(dir, CHUNK_DIGESTS_FILE), JSON.stringify(recorded));
}

/**
 * The recorded chunk digests of `dir/name` at `chunkBytes`, if its writer recorded them and
 * the file is as it was written; else undefined.
 */
export async function readChunkDigests(
  dir: string,
  name: string,
  chunkBytes: number,
): Promise<string[] | undefined> {
  try {
    const recorded = JSON.parse(
      await readFile(join(dir, CHUNK_DIGESTS_FILE), 'utf8'),
    ) as RecordedDigests;
    const file = recorded.files[name];
    if (recorded.chunkBytes !== chunkBytes || !file) return undefined;
    return file.stat === (await fileStatKey(join(dir, name))) ? file.digests : undefined;
  } catch {
    return undefined;
  }
}
