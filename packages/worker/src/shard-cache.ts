/**
 * A worker's disk cache of shards, content-addressed: `<cacheDir>/shards/<shardId>/`.
 * A shard arrives in chunks into a staging directory, is checked file by file
 * against the sha256 the coordinator announced, and only then moved into place.
 * Shard ids are 64 hex digits, so a cache path can never leave the cache dir.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import {
  asSwarmBeeError,
  HashMismatchError,
  InvalidArgumentError,
  ShardInvalidError,
  type SwarmBeeError,
} from '@swarmbee/core';

export interface ShardFileEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface ShardOffer {
  shardId: string;
  bytes: number;
  files: ShardFileEntry[];
}

/** Written beside a cached shard's files: what the coordinator announced. */
const OFFER_FILE = '.offer.json';
const SHARD_ID = /^[0-9a-f]{64}$/;
const FILE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function checkShardId(shardId: string): void {
  if (!SHARD_ID.test(shardId))
    throw new InvalidArgumentError(
      `shard id ${JSON.stringify(shardId).slice(0, 80)} is not 64 hex digits`,
    );
}

function checkFileName(name: string): void {
  if (!FILE_NAME.test(name) || name === '.' || name === '..' || name === OFFER_FILE) {
    throw new InvalidArgumentError(
      `shard file name ${JSON.stringify(name).slice(0, 80)} is not allowed`,
    );
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk);
  return hash.digest('hex');
}

export class ShardCache {
  readonly #root: string;
  readonly #incoming = new Map<string, IncomingShard>();
  /** Transfers that failed, with why, until the coordinator finishes or restarts them. */
  readonly #failed = new Map<string, SwarmBeeError>();

  constructor(readonly cacheDir: string) {
    this.#root = join(cacheDir, 'shards');
  }

  pathOf(shardId: string): string {
    checkShardId(shardId);
    return join(this.#root, shardId);
  }

  /** Shard ids on disk (not verified: {@link verify} before loading one). */
  async list(): Promise<string[]> {
    await mkdir(this.#root, { recursive: true });
    return (await readdir(this.#root)).filter((name) => SHARD_ID.test(name));
  }

  /** Whether the shard is on disk with every file as announced (sizes and sha256). */
  async has(offer: ShardOffer): Promise<boolean> {
    try {
      await this.verify(offer);
      return true;
    } catch {
      return false;
    }
  }

  /** Checks every file of a cached shard against the offer; throws a coded error on any mismatch. */
  async verify(offer: ShardOffer): Promise<string> {
    const dir = this.pathOf(offer.shardId);
    for (const file of offer.files) {
      checkFileName(file.name);
      const path = join(dir, file.name);
      const size = await stat(path).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== file.bytes)
        throw new ShardInvalidError(
          `cached shard ${offer.shardId.slice(0, 12)}: ${file.name} is ${size < 0 ? 'missing' : `${size} bytes`}, expected ${file.bytes}`,
        );
      const digest = await sha256OfFile(path);
      if (digest !== file.sha256)
        throw new HashMismatchError(
          `cached shard ${offer.shardId.slice(0, 12)}: ${file.name} has sha256 ${digest.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…`,
        );
    }
    return dir;
  }

  /** The offer recorded with a cached shard, if any. */
  async offerOf(shardId: string): Promise<ShardOffer | undefined> {
    try {
      return JSON.parse(
        await readFile(join(this.pathOf(shardId), OFFER_FILE), 'utf8'),
      ) as ShardOffer;
    } catch {
      return undefined;
    }
  }

  /** Starts receiving a shard; chunks go to a staging directory until {@link finish}. */
  async begin(offer: ShardOffer): Promise<void> {
    checkShardId(offer.shardId);
    for (const file of offer.files) checkFileName(file.name);
    await this.abort(offer.shardId);
    this.#failed.delete(offer.shardId);
    const dir = join(this.#root, `.incoming-${offer.shardId}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    this.#incoming.set(offer.shardId, new IncomingShard(offer, dir));
  }

  /**
   * Writes one chunk of a shard being received. Chunks of one shard are written in
   * arrival order; the first that fails rejects (report it once) and fails the transfer:
   * its later chunks are dropped without another error, and {@link finish} throws that
   * failure. Other shards' transfers are not affected.
   */
  write(shardId: string, file: string, offset: number, data: Uint8Array): Promise<void> {
    if (this.#failed.has(shardId)) return Promise.resolve();
    const incoming = this.#incoming.get(shardId);
    if (!incoming) {
      this.#failed.set(
        shardId,
        new InvalidArgumentError(`no transfer of shard ${shardId.slice(0, 12)} is in progress`),
      );
      return Promise.reject(this.#failed.get(shardId));
    }
    return incoming.write(file, offset, data).catch((error: unknown) => {
      const coded = asSwarmBeeError(error);
      // Unless finish() has taken the transfer already (then it reports the failure itself).
      if (this.#incoming.get(shardId) === incoming) {
        this.#incoming.delete(shardId);
        this.#failed.set(shardId, coded);
        void incoming.discard();
      }
      throw coded;
    });
  }

  /** Verifies the received files and moves the shard into the cache; returns its path. */
  async finish(shardId: string): Promise<string> {
    const failure = this.#failed.get(shardId);
    this.#failed.delete(shardId);
    if (failure) throw failure;
    const incoming = this.#incoming.get(shardId);
    if (!incoming)
      throw new InvalidArgumentError(`no transfer of shard ${shardId.slice(0, 12)} is in progress`);
    this.#incoming.delete(shardId);
    try {
      await incoming.close();
      for (const file of incoming.offer.files) {
        const digest = await sha256OfFile(join(incoming.dir, file.name));
        if (digest !== file.sha256)
          throw new HashMismatchError(
            `received shard ${shardId.slice(0, 12)}: ${file.name} has sha256 ${digest.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…`,
          );
      }
      await writeFile(join(incoming.dir, OFFER_FILE), JSON.stringify(incoming.offer));
      const target = this.pathOf(shardId);
      await rm(target, { recursive: true, force: true });
      await rename(incoming.dir, target);
      return target;
    } catch (error) {
      await rm(incoming.dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Drops a transfer in progress (its staging directory included). */
  async abort(shardId: string): Promise<void> {
    this.#failed.delete(shardId);
    const incoming = this.#incoming.get(shardId);
    if (!incoming) return;
    this.#incoming.delete(shardId);
    await incoming.discard();
  }

  /** Drops every transfer in progress: the coordinator that sent them is gone. */
  async abortAll(): Promise<void> {
    await Promise.all(
      [...this.#incoming.keys(), ...this.#failed.keys()].map((id) => this.abort(id)),
    );
  }
}

class IncomingShard {
  readonly #handles = new Map<string, FileHandle>();
  readonly #files: Map<string, ShardFileEntry>;
  /** Writes run one after another, in arrival order (a file is opened once). */
  #tail: Promise<void> = Promise.resolve();
  /** The first write that failed: the transfer has failed. */
  #failure?: unknown;

  constructor(
    readonly offer: ShardOffer,
    readonly dir: string,
  ) {
    this.#files = new Map(offer.files.map((f) => [f.name, f]));
  }

  write(name: string, offset: number, data: Uint8Array): Promise<void> {
    const step = this.#tail.then(() => this.#write(name, offset, data));
    this.#tail = step.catch((error: unknown) => {
      this.#failure ??= error;
    });
    return step;
  }

  async #write(name: string, offset: number, data: Uint8Array): Promise<void> {
    const file = this.#files.get(name);
    if (!file)
      throw new InvalidArgumentError(
        `shard ${this.offer.shardId.slice(0, 12)} has no file named ${name}`,
      );
    if (offset < 0 || offset + data.length > file.bytes) {
      throw new InvalidArgumentError(
        `chunk [${offset}, ${offset + data.length}) lies outside ${name} (${file.bytes} bytes)`,
      );
    }
    let handle = this.#handles.get(name);
    if (!handle) {
      handle = await open(join(this.dir, name), 'w');
      this.#handles.set(name, handle);
    }
    await handle.write(data, 0, data.length, offset);
  }

  /** Closes the files and removes the staging directory. Never rejects. */
  async discard(): Promise<void> {
    await this.#tail;
    await Promise.all([...this.#handles.values()].map((h) => h.close().catch(() => {})));
    this.#handles.clear();
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }

  /** Closes the files once every write is done; throws the first write's failure, if one failed. */
  async close(): Promise<void> {
    await this.#tail;
    if (this.#failure !== undefined) {
      await this.discard();
      throw this.#failure;
    }
    // Files that got no chunks (empty, or never sent) still exist, so verification can judge them.
    for (const name of this.#files.keys()) {
      if (!this.#handles.has(name)) this.#handles.set(name, await open(join(this.dir, name), 'w'));
    }
    await Promise.all([...this.#handles.values()].map((h) => h.close()));
    this.#handles.clear();
  }
}
