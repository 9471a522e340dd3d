/**
 * What a cached shard's files were verified as: beside them, each file's sha256 as last
 * verified, with the inode, size, and modification and change times (ns) it had then. A file
 * whose stat still matches is not read and hashed again on every offer and load; any write to
 * it changes them (a restored mtime leaves the ctime changed).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const VERIFIED_FILE = '.verified.json';

interface VerifiedFile {
  name: string;
  sha256: string;
  /** Inode, size, mtime and ctime (ns). */
  stat: string;
}

/** A file's inode, size, mtime and ctime (ns) as one key; undefined when it is missing. */
export async function statKey(path: string): Promise<string | undefined> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  return s && `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** The records of `dir`, by file name (none when missing or unreadable). */
export async function readVerifiedFiles(
  dir: string,
): Promise<Map<string, { sha256: string; stat: string }>> {
  try {
    const list = JSON.parse(await readFile(join(dir, VERIFIED_FILE), 'utf8')) as VerifiedFile[];
    return new Map(list.map((f) => [f.name, f]));
  } catch {
    return new Map();
  }
}

/** Records what `digests` (name → sha256, just verified) are, by each file's stat now. */
export async function writeVerifiedFiles(
  dir: string,
  digests: ReadonlyMap<string, string>,
): Promise<void> {
  const list: VerifiedFile[] = [];
  for (const [name, sha256] of digests) {
    const key = await statKey(join(dir, name));
    if (key) list.push({ name, sha256, stat: key });
  }
  await writeFile(join(dir, VERIFIED_FILE), JSON.stringify(list));
}
