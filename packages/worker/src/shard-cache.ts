/**
 * A worker's disk cache of shards, content-addressed: `<cacheDir>/shards/<shardId>/`.
 * A shard arrives in chunks into a staging directory (`.incoming-<shardId>/`, see
 * IncomingShard), is checked file by file against the sha256 the coordinator announced,
 * and only then moved into place. A transfer cut short keeps its staging directory to
 * resume from; one left untouched for `partialMaxAgeMs` is deleted (the cache's only
 * eviction rule: complete shards stay until removed by hand).
 * Shard ids are 64 hex digits, so a cache path can never leave the cache dir.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  asSwarmBeeError,
  HashMismatchError,
  InvalidArgumentError,
  ShardInvalidError,
  type SwarmBeeError,
} from '@swarmbee/core';
import {
  IncomingShard,
  OFFER_FILE,
  type OpenShardFile,
  openShardFile,
  type ShardOffer,
} from './incoming-shard.js';
import { readVerifiedFiles, statKey, VERIFIED_FILE, writeVerifiedFiles } from './verified-files.js';

export type { ShardFileEntry, ShardOffer } from './incoming-shard.js';

export interface ShardCacheOptions {
  /** A partial transfer untouched this long is deleted, ms. Default 86400000 (a day). */
  partialMaxAgeMs?: number;
  /** How received files are opened for writing. Default: the file itself (tests slow it down). */
  openFile?: OpenShardFile;
  /** Bytes of a file one journal line covers at most. Default `JOURNAL_LINE_BYTES` (4 MiB). */
  journalLineBytes?: number;
}

export const DEFAULT_PARTIAL_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const INCOMING_PREFIX = '.incoming-';
const SHARD_ID = /^[0-9a-f]{64}$/;
const FILE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function checkShardId(shardId: string): void {
  if (!SHARD_ID.test(shardId))
    throw new InvalidArgumentError(
      `shard id ${JSON.stringify(shardId).slice(0, 80)} is not 64 hex digits`,
    );
}

function checkFileName(name: string): void {
  if (
    !FILE_NAME.test(name) ||
    name === '.' ||
    name === '..' ||
    name === OFFER_FILE ||
    name === VERIFIED_FILE
  ) {
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
  readonly #options: ShardCacheOptions;
  readonly #incoming = new Map<string, IncomingShard>();
  /** Transfers that failed, with why, until the coordinator offers or finishes them again. */
  readonly #failed = new Map<string, SwarmBeeError>();
  /** Transfers being suspended: their last writes and journal lines are still landing. */
  readonly #settling = new Map<string, Promise<void>>();

  constructor(
    readonly cacheDir: string,
    options: ShardCacheOptions = {},
  ) {
    this.#root = join(cacheDir, 'shards');
    this.#options = options;
  }

  pathOf(shardId: string): string {
    checkShardId(shardId);
    return join(this.#root, shardId);
  }

  /** Shard ids on disk (not verified: {@link verify} before loading one). Evicts stale partial transfers. */
  async list(): Promise<string[]> {
    await mkdir(this.#root, { recursive: true });
    await this.evictPartials();
    return (await readdir(this.#root)).filter((name) => SHARD_ID.test(name));
  }

  /** Deletes partial transfers not in progress and untouched for `partialMaxAgeMs`; returns their ids. */
  async evictPartials(now = Date.now()): Promise<string[]> {
    const maxAgeMs = this.#options.partialMaxAgeMs ?? DEFAULT_PARTIAL_MAX_AGE_MS;
    const evicted: string[] = [];
    for (const name of await readdir(this.#root).catch(() => [] as string[])) {
      const shardId = name.slice(INCOMING_PREFIX.length);
      if (!name.startsWith(INCOMING_PREFIX) || this.#incoming.has(shardId)) continue;
      const dir = join(this.#root, name);
      // The journal changes with every chunk: its age is the transfer's.
      const touched = await stat(join(dir, '.journal'))
        .catch(() => stat(dir))
        .then((s) => s.mtimeMs)
        .catch(() => 0);
      if (now - touched < maxAgeMs) continue;
      await rm(dir, { recursive: true, force: true });
      evicted.push(shardId);
    }
    return evicted;
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

  /**
   * Checks every file of a cached shard against the offer; throws a coded error on any
   * mismatch. A file unchanged since it was last verified (same inode, size, mtime and
   * ctime) is not read again.
   */
  async verify(offer: ShardOffer): Promise<string> {
    const dir = this.pathOf(offer.shardId);
    const known = await readVerifiedFiles(dir);
    let hashed = false;
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
      const record = known.get(file.name);
      if (record?.sha256 === file.sha256 && record.stat === (await statKey(path))) continue;
      const digest = await sha256OfFile(path);
      if (digest !== file.sha256)
        throw new HashMismatchError(
          `cached shard ${offer.shardId.slice(0, 12)}: ${file.name} has sha256 ${digest.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…`,
        );
      hashed = true;
    }
    if (hashed)
      await writeVerifiedFiles(dir, new Map(offer.files.map((f) => [f.name, f.sha256]))).catch(
        () => {},
      );
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

  /**
   * Starts receiving a shard, or resumes an earlier transfer of the same offer that was
   * cut short (here or before a restart); chunks go to its staging directory until
   * {@link finish}. Resolves with the bytes of each file already held and verified.
   */
  async begin(offer: ShardOffer): Promise<{ file: string; bytes: number }[]> {
    checkShardId(offer.shardId);
    for (const file of offer.files) checkFileName(file.name);
    await this.suspend(offer.shardId);
    await this.#settling.get(offer.shardId);
    this.#failed.delete(offer.shardId);
    await mkdir(this.#root, { recursive: true });
    const incoming = await IncomingShard.open(
      offer,
      join(this.#root, `${INCOMING_PREFIX}${offer.shardId}`),
      this.#options.openFile ?? openShardFile,
      this.#options.journalLineBytes,
    );
    this.#incoming.set(offer.shardId, incoming);
    return incoming.verified;
  }

  /** Bytes received but not yet on disk, over every transfer: what the cache holds in memory. */
  get pendingBytes(): number {
    let bytes = 0;
    for (const incoming of this.#incoming.values()) bytes += incoming.pendingBytes;
    return bytes;
  }

  /** Whether the transfer of `shardId` failed (and the failure was reported by the chunk that failed). */
  failed(shardId: string): boolean {
    return this.#failed.has(shardId);
  }

  /**
   * Writes one chunk of a shard being received, in order, after checking its sha256.
   * The first chunk that fails rejects (report it once) and fails the transfer: its
   * staging directory keeps every chunk verified before it, its later chunks are dropped
   * without another error, and {@link finish} throws that failure. Other shards'
   * transfers are not affected.
   */
  write(
    shardId: string,
    file: string,
    offset: number,
    data: Uint8Array,
    sha256: string,
  ): Promise<void> {
    if (this.#failed.has(shardId)) return Promise.resolve();
    const incoming = this.#incoming.get(shardId);
    if (!incoming) {
      this.#failed.set(
        shardId,
        new InvalidArgumentError(`no transfer of shard ${shardId.slice(0, 12)} is in progress`),
      );
      return Promise.reject(this.#failed.get(shardId));
    }
    const fail = (error: unknown): SwarmBeeError => {
      const coded = asSwarmBeeError(error);
      // Unless finish() has taken the transfer already (then it reports the failure itself).
      if (this.#incoming.get(shardId) === incoming) {
        this.#incoming.delete(shardId);
        this.#failed.set(shardId, coded);
        void this.#settle(shardId, incoming);
      }
      return coded;
    };
    let written: Promise<void>;
    try {
      written = incoming.write(file, offset, data, sha256);
    } catch (error) {
      // Refused before writing (corrupt, out of order): failed at once, so the chunks
      // already behind it are dropped, not reported again.
      return Promise.reject(fail(error));
    }
    return written.catch((error: unknown) => {
      throw fail(error);
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
    // A chunk that failed to reach the disk leaves what came before it to resume from.
    await incoming.close();
    try {
      // Hashed as it was written (a resumed file's prefix as it resumed): nothing is read back.
      const received = incoming.receivedDigests();
      for (const file of incoming.offer.files) {
        const digest =
          received.get(file.name) ?? (await sha256OfFile(join(incoming.dir, file.name)));
        if (digest !== file.sha256)
          throw new HashMismatchError(
            `received shard ${shardId.slice(0, 12)}: ${file.name} has sha256 ${digest.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…`,
          );
      }
      await writeVerifiedFiles(
        incoming.dir,
        new Map(incoming.offer.files.map((f) => [f.name, f.sha256])),
      );
      const target = this.pathOf(shardId);
      await rm(target, { recursive: true, force: true });
      await rename(incoming.dir, target);
      return target;
    } catch (error) {
      // Every chunk matched the digest sent with it, but the whole is not the file offered: nothing here can be trusted.
      await rm(incoming.dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Stops a transfer in progress, keeping what it verified to resume from. */
  async suspend(shardId: string): Promise<void> {
    this.#failed.delete(shardId);
    const incoming = this.#incoming.get(shardId);
    if (!incoming) return;
    this.#incoming.delete(shardId);
    await this.#settle(shardId, incoming);
  }

  /** Suspends `incoming`; a later {@link begin} of the shard waits for it. Never rejects. */
  #settle(shardId: string, incoming: IncomingShard): Promise<void> {
    const settled = incoming.suspend().finally(() => {
      if (this.#settling.get(shardId) === settled) this.#settling.delete(shardId);
    });
    this.#settling.set(shardId, settled);
    return settled;
  }

  /** Drops a transfer in progress, its staging directory included. */
  async abort(shardId: string): Promise<void> {
    this.#failed.delete(shardId);
    const incoming = this.#incoming.get(shardId);
    this.#incoming.delete(shardId);
    if (incoming) await incoming.discard();
    else
      await rm(join(this.#root, `${INCOMING_PREFIX}${shardId}`), { recursive: true, force: true });
  }

  /** Stops every transfer in progress (the coordinator that sent them is gone), keeping them to resume. */
  async suspendAll(): Promise<void> {
    await Promise.all(
      [...this.#incoming.keys(), ...this.#failed.keys()].map((id) => this.suspend(id)),
    );
  }
}
