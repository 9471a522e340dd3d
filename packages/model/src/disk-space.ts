/**
 * Refusing up front what the disk cannot hold: an import, a quantized copy or a
 * synthetic checkpoint checks the free bytes of the filesystem it writes to before
 * writing anything, so a long conversion never dies near the end with a full disk.
 */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DiskSpaceError } from '@swarmbee/core';

/** Left free beyond what an output needs (manifests, tokenizer, the filesystem's own slack). */
export const DISK_HEADROOM_BYTES = 64 * 1024 * 1024;

/** Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest existing parent). */
export async function freeDiskBytes(path: string): Promise<number> {
  let at = resolve(path);
  for (;;) {
    try {
      const fs = await statfs(at);
      return fs.bavail * fs.bsize;
    } catch (error) {
      const parent = dirname(at);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw error;
      at = parent;
    }
  }
}

/**
 * Throws {@link DiskSpaceError} when writing `bytes` at `out` would leave less than
 * {@link DISK_HEADROOM_BYTES} free; `what` names the output in the message.
 */
export async function ensureDiskSpace(out: string, bytes: number, what: string): Promise<void> {
  const free = await freeDiskBytes(out);
  if (bytes + DISK_HEADROOM_BYTES > free) {
    throw new DiskSpaceError(
      `${what} needs ${bytes} bytes (${gib(bytes)}) at ${resolve(out)} but the disk has ${free} bytes (${gib(free)}) free` +
        ` (${gib(DISK_HEADROOM_BYTES)} kept as headroom); free space or choose another --out`,
    );
  }
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
