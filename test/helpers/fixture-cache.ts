/**
 * Fixtures made once per content and shared by every test process: a directory under
 * `node_modules/.cache/swarmbee-test/<name>-<key>`, where the key hashes what the fixture is
 * made from (input files and the built code that makes it). A test gets its own copy, so a
 * test that changes its fixture changes no other test's.
 *
 * Safe under parallel tap jobs without a lock: each maker writes into a directory of its
 * own and renames it into place; a rename onto a directory another process put there first
 * fails, and the loser uses the winner's (the same bytes, by the key).
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './shared-models.js';

export const FIXTURE_CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'swarmbee-test');

/** Hashes files, and every file under directories, by path and content. */
export async function contentKey(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (path: string): Promise<void> => {
    if ((await stat(path)).isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await visit(join(path, entry));
      return;
    }
    hash.update(relative(REPO_ROOT, path));
    hash.update(await readFile(path));
  };
  for (const path of paths) await visit(path);
  return hash.digest('hex').slice(0, 16);
}

/**
 * The cached directory `name` for `key`, made by `make(dir)` the first time; `make` must
 * write only into `dir` and throw if it fails (nothing is cached then).
 */
export async function cachedFixture(
  name: string,
  key: string,
  make: (dir: string) => Promise<void>,
): Promise<string> {
  const dir = join(FIXTURE_CACHE_DIR, `${name}-${key}`);
  if (await exists(dir)) return dir;
  await mkdir(FIXTURE_CACHE_DIR, { recursive: true });
  const scratch = await mkdtemp(join(FIXTURE_CACHE_DIR, `.${name}-${key}-`));
  try {
    const out = join(scratch, 'fixture');
    await make(out);
    try {
      await rename(out, dir);
    } catch (error) {
      // Another process renamed the same fixture into place first.
      if (!(await exists(dir))) throw error;
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return dir;
}

/** A copy of the cached fixture at `out`, for one test to use and change. */
export async function copyFixture(cached: string, out: string): Promise<string> {
  await cp(cached, out, { recursive: true });
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
