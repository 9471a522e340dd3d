/**
 * Output directories are built under a temporary name beside the target and
 * renamed into place only when complete, so a failure never leaves anything
 * half-written where the user asked for output.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OutputExistsError } from '@swarmbee/core';

export class StagingDir {
  readonly path: string;
  readonly target: string;
  #done = false;

  private constructor(target: string, path: string) {
    this.target = target;
    this.path = path;
  }

  /** Fails with OutputExistsError when `target` exists and is not an empty directory. */
  static async create(target: string): Promise<StagingDir> {
    await assertWritableTarget(target);
    await mkdir(dirname(target), { recursive: true });
    const path = join(dirname(target), `.${basename(target)}.partial-${process.pid}-${Date.now()}`);
    await mkdir(path);
    return new StagingDir(target, path);
  }

  /** Moves the finished directory into place. */
  async commit(): Promise<void> {
    await assertWritableTarget(this.target);
    await rm(this.target, { recursive: true, force: true });
    await rename(this.path, this.target);
    this.#done = true;
  }

  /** Removes the partial output; safe to call after commit. */
  async discard(): Promise<void> {
    if (!this.#done) await rm(this.path, { recursive: true, force: true });
    this.#done = true;
  }

  /** Runs `build` in a fresh staging dir and commits it, or discards it if `build` throws. */
  static async build<T>(target: string, build: (dir: string) => Promise<T>): Promise<T> {
    const staging = await StagingDir.create(target);
    try {
      const result = await build(staging.path);
      await staging.commit();
      return result;
    } finally {
      await staging.discard();
    }
  }
}

async function assertWritableTarget(target: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new OutputExistsError(`${target} exists and is not a directory`);
    throw error;
  }
  if (entries.length > 0) {
    throw new OutputExistsError(
      `${target} already exists and is not empty; choose another --out or remove it`,
    );
  }
}
