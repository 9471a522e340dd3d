/**
 * One shard being received into its staging directory (`.incoming-<shardId>/`): its
 * files, written chunk by chunk in order, and a journal of the chunks on disk
 * (`.journal`, one line per {@link JOURNAL_LINE_BYTES} of a file and at its end, appended
 * once those bytes are written; a suspended transfer journals what it wrote since), so a
 * transfer cut short — a dropped connection, a restarted worker — resumes from its last
 * journalled chunk instead of from zero (a crash loses less than one line's bytes).
 *
 * Every byte is hashed once: each file keeps the sha256 state of its bytes so far, and a
 * chunk comes with the digest of its file from byte 0 through the chunk's end, which that
 * state must give once the chunk is fed to it (checked before the chunk is written). The
 * last chunk's digest is the file's own, so a file received whole is verified without
 * reading it back; a resumed file's prefix is read back once, at open, to rebuild its state.
 *
 * The staging directory also holds the offer (`.offer.json`): a resume needs the same
 * offer, else the transfer starts afresh.
 *
 * Nothing here is ever taken as the whole shard: the cache moves a staging directory into
 * place only after every file's sha256 matched the offer (see ShardCache.finish).
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, ShardChunkCorruptError } from '@swarmbee/core';

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

/** What a received shard file is written through: a FileHandle does. */
export interface ShardFileSink {
  write(data: Uint8Array, offset: number, length: number, position: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Opens a received shard file for writing at given positions (created when missing). */
export type OpenShardFile = (path: string) => Promise<ShardFileSink>;

/** The default sink: the file itself, created if missing, never truncated (a resume keeps its bytes). */
export const openShardFile: OpenShardFile = (path) =>
  open(path, constants.O_WRONLY | constants.O_CREAT);

/** Written beside a shard's files: what the coordinator announced. */
export const OFFER_FILE = '.offer.json';
const JOURNAL_FILE = '.journal';

/**
 * Bytes of a file a journal line covers at most: one line per this much (and at the file's
 * end), not per chunk. What a crash can lose of a transfer, beyond the chunks in flight.
 */
export const JOURNAL_LINE_BYTES = 4 * 1024 * 1024;

/** Chunks on disk, as the journal records them: a span of a file and the digest of the file through it. */
interface JournalEntry {
  file: string;
  offset: number;
  bytes: number;
  sha256: string;
}

/** Bytes read at a time when a resumed file's prefix is hashed again. */
const REHASH_READ_BYTES = 4 * 1024 * 1024;

function parseJournal(text: string, files: ReadonlyMap<string, ShardFileEntry>): JournalEntry[] {
  const entries: JournalEntry[] = [];
  // A line cut short by a crash has no newline after it: it is not a record.
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const line of complete.split('\n')) {
    const [file, offset, bytes, sha256, ...rest] = line.split('\t');
    if (!file || rest.length > 0 || !files.has(file) || !/^[0-9a-f]{64}$/.test(sha256 ?? ''))
      continue;
    entries.push({ file, offset: Number(offset), bytes: Number(bytes), sha256: sha256 ?? '' });
  }
  return entries;
}

export class IncomingShard {
  readonly #files: ReadonlyMap<string, ShardFileEntry>;
  readonly #sinks = new Map<string, ShardFileSink>();
  /** Per file: bytes on disk and journalled, from the start. */
  readonly #verified = new Map<string, number>();
  /** Per file: where the next accepted chunk must start (past the chunks queued). */
  readonly #expected = new Map<string, number>();
  #journal?: FileHandle;
  /** Per file: the sha256 state of its bytes from 0 to where the next chunk starts. */
  readonly #fileHashes: Map<string, Hash>;
  /** Writes run one after another, in arrival order. */
  #tail: Promise<void> = Promise.resolve();
  /** Journal lines are appended one after another, each once its chunks are on disk. */
  #journalTail: Promise<void> = Promise.resolve();
  /** Per file: chunks on disk that no journal line covers yet, as one span. */
  readonly #unjournalled = new Map<string, JournalEntry>();
  /** The first write that failed: the transfer has failed. */
  #failure?: unknown;
  #pendingBytes = 0;

  private constructor(
    readonly offer: ShardOffer,
    readonly dir: string,
    readonly openFile: OpenShardFile,
    readonly journalLineBytes: number,
    /** Bytes held from the start when it was opened: what a resume did not need sent. */
    readonly resumedBytes: number,
    held: ReadonlyMap<string, HeldPrefix>,
  ) {
    this.#files = new Map(offer.files.map((f) => [f.name, f]));
    this.#fileHashes = new Map();
    for (const file of offer.files) {
      const prefix = held.get(file.name);
      const bytes = prefix?.bytes ?? 0;
      this.#verified.set(file.name, bytes);
      this.#expected.set(file.name, bytes);
      this.#fileHashes.set(file.name, prefix?.hash ?? createHash('sha256'));
    }
  }

  /**
   * Opens the staging directory for `offer`: resumes what an earlier transfer of the same
   * offer left there (its journalled chunks, as far as the disk still matches them: each
   * file's prefix is read back and hashed), or starts afresh.
   */
  static async open(
    offer: ShardOffer,
    dir: string,
    openFile: OpenShardFile = openShardFile,
    journalLineBytes: number = JOURNAL_LINE_BYTES,
  ): Promise<IncomingShard> {
    // Only what names the content: the same shard offered with other options resumes.
    const recorded: ShardOffer = {
      shardId: offer.shardId,
      bytes: offer.bytes,
      files: offer.files.map(({ name, bytes, sha256 }) => ({ name, bytes, sha256 })),
    };
    const files = new Map(recorded.files.map((f) => [f.name, f]));
    const verified = await readVerified(recorded, dir, files);
    if (!verified) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, OFFER_FILE), JSON.stringify(recorded));
    }
    const held = verified ?? new Map<string, HeldPrefix>();
    const resumed = [...held.values()].reduce((n, p) => n + p.bytes, 0);
    const incoming = new IncomingShard(recorded, dir, openFile, journalLineBytes, resumed, held);
    incoming.#journal = await open(join(dir, JOURNAL_FILE), 'a');
    return incoming;
  }

  /** Bytes of each file already on disk and verified (files with none are left out). */
  get verified(): { file: string; bytes: number }[] {
    return [...this.#verified]
      .filter(([, bytes]) => bytes > 0)
      .map(([file, bytes]) => ({
        file,
        bytes,
      }));
  }

  /** Bytes accepted but not yet on disk: what this transfer holds in memory. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Takes one chunk: checks it starts where its file's last one ended and that the file's
   * bytes through it have the `sha256` sent with it (throwing, synchronously,
   * InvalidArgumentError or ShardChunkCorruptError: nothing of it is written, and the
   * transfer is over: its owner opens the staging directory afresh to resume), then
   * queues its write. The promise settles once it is on disk (its journal line follows).
   */
  write(name: string, offset: number, data: Uint8Array, sha256: string): Promise<void> {
    const file = this.#files.get(name);
    if (!file)
      throw new InvalidArgumentError(
        `shard ${this.offer.shardId.slice(0, 12)} has no file named ${name}`,
      );
    const expected = this.#expected.get(name) ?? 0;
    if (offset !== expected || offset + data.length > file.bytes)
      throw new InvalidArgumentError(
        `chunk [${offset}, ${offset + data.length}) of ${name} (${file.bytes} bytes) is out of order: the next chunk starts at ${expected}`,
      );
    const hash = this.#fileHashes.get(name) ?? createHash('sha256');
    // Fed before the check: a refused chunk ends this transfer, so the state is never reused.
    const digest = hash.update(data).copy().digest('hex');
    if (digest !== sha256)
      throw new ShardChunkCorruptError(
        `shard ${this.offer.shardId.slice(0, 12)}: chunk [${offset}, ${offset + data.length}) of ${name} has sha256 ${digest.slice(0, 12)}…, sent as ${sha256.slice(0, 12)}…; refused, resend from byte ${offset}`,
      );
    this.#expected.set(name, offset + data.length);
    this.#pendingBytes += data.length;
    const step = this.#tail.then(async () => {
      try {
        if (this.#failure !== undefined) throw this.#failure;
        await this.#writeChunk({ file: name, offset, bytes: data.length, sha256 }, data);
      } finally {
        this.#pendingBytes -= data.length;
      }
    });
    this.#tail = step.catch((error: unknown) => {
      this.#failure ??= error;
    });
    return step;
  }

  async #writeChunk(entry: JournalEntry, data: Uint8Array): Promise<void> {
    let sink = this.#sinks.get(entry.file);
    if (!sink) {
      sink = await this.openFile(join(this.dir, entry.file));
      this.#sinks.set(entry.file, sink);
    }
    await sink.write(data, 0, data.length, entry.offset);
    this.#verified.set(entry.file, entry.offset + entry.bytes);
    // Journalled only once on disk: a crash between the two re-sends these chunks, never
    // skips them. The next chunk's write does not wait for the line (appends keep their order).
    const earlier = this.#unjournalled.get(entry.file);
    const span = earlier
      ? { ...earlier, bytes: earlier.bytes + entry.bytes, sha256: entry.sha256 }
      : entry;
    const end = span.offset + span.bytes;
    if (span.bytes >= this.journalLineBytes || end === this.#files.get(entry.file)?.bytes) {
      this.#unjournalled.delete(entry.file);
      this.#appendJournal(span);
    } else this.#unjournalled.set(entry.file, span);
  }

  #appendJournal(span: JournalEntry): void {
    const line = `${span.file}\t${span.offset}\t${span.bytes}\t${span.sha256}\n`;
    this.#journalTail = this.#journalTail
      .then(() => this.#journal?.write(line))
      .then(
        () => {},
        (error: unknown) => {
          this.#failure ??= error;
        },
      );
  }

  /**
   * The sha256 of each file received whole, from the bytes written (call after
   * {@link close}); files not received whole are left out.
   */
  receivedDigests(): Map<string, string> {
    const digests = new Map<string, string>();
    for (const [name, hash] of this.#fileHashes) {
      if (this.#verified.get(name) === this.#files.get(name)?.bytes)
        digests.set(name, hash.digest('hex'));
    }
    this.#fileHashes.clear();
    return digests;
  }

  /** Waits for the writes in hand and closes the files; the staging directory stays to resume from. Never rejects. */
  async suspend(): Promise<void> {
    await this.#tail;
    // What is on disk but not journalled yet: a resume keeps it.
    for (const span of this.#unjournalled.values()) this.#appendJournal(span);
    this.#unjournalled.clear();
    await this.#journalTail;
    await Promise.all([...this.#sinks.values()].map((s) => s.close().catch(() => {})));
    this.#sinks.clear();
    await this.#journal?.close().catch(() => {});
    this.#journal = undefined;
  }

  /** Closes the files and removes the staging directory. Never rejects. */
  async discard(): Promise<void> {
    await this.suspend();
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Closes the files once every write is done, dropping the journal (the directory is
   * about to become the cached shard); throws the first write's failure, if one failed.
   */
  async close(): Promise<void> {
    await this.#tail;
    await this.#journalTail;
    if (this.#failure !== undefined) {
      await this.suspend();
      throw this.#failure;
    }
    // Files that got no chunks (empty, or never sent) still exist, so verification can judge them.
    for (const name of this.#files.keys()) {
      if (!this.#sinks.has(name)) this.#sinks.set(name, await this.openFile(join(this.dir, name)));
    }
    await this.suspend();
    await rm(join(this.dir, JOURNAL_FILE), { force: true });
  }
}

/** A file's bytes from the start that a resume keeps, and the sha256 state after them. */
interface HeldPrefix {
  bytes: number;
  hash: Hash;
}

/**
 * What an earlier transfer of `offer` left in `dir`: per file, the bytes from the start
 * that its journal vouches for and the disk still holds (read back and hashed, each
 * journalled chunk's digest checked in turn: the first that fails ends the prefix), with
 * the hash state after them; undefined when there is nothing to resume (no directory,
 * another offer, an unreadable one).
 */
async function readVerified(
  offer: ShardOffer,
  dir: string,
  files: ReadonlyMap<string, ShardFileEntry>,
): Promise<Map<string, HeldPrefix> | undefined> {
  const recorded = await readFile(join(dir, OFFER_FILE), 'utf8').catch(() => undefined);
  if (recorded !== JSON.stringify(offer)) return undefined;
  const text = await readFile(join(dir, JOURNAL_FILE), 'utf8').catch(() => '');
  const runs = new Map<string, JournalEntry[]>();
  for (const entry of parseJournal(text, files)) {
    // Chunks follow each other from byte 0; one that does not continue the run restarted it.
    const run = runs.get(entry.file) ?? [];
    const last = run.at(-1);
    const held = last ? last.offset + last.bytes : 0;
    if (entry.offset > held) continue;
    while (run.length > 0 && (run.at(-1)?.offset ?? 0) >= entry.offset) run.pop();
    run.push(entry);
    runs.set(entry.file, run);
  }
  const verified = new Map<string, HeldPrefix>();
  for (const [name, run] of runs) verified.set(name, await hashPrefix(join(dir, name), run));
  return verified;
}

/** Hashes `path` chunk by chunk of `run`, as far as each chunk's digest matches. */
async function hashPrefix(path: string, run: JournalEntry[]): Promise<HeldPrefix> {
  let held: HeldPrefix = { bytes: 0, hash: createHash('sha256') };
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return held;
  const buffer = Buffer.allocUnsafe(REHASH_READ_BYTES);
  try {
    for (const entry of run) {
      const hash = held.hash.copy();
      const end = entry.offset + entry.bytes;
      for (let at = entry.offset; at < end; ) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - at), at);
        if (bytesRead === 0) return held;
        hash.update(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
      // The first chunk the disk no longer matches (a crash cut its write short) ends the prefix.
      if (hash.copy().digest('hex') !== entry.sha256) break;
      held = { bytes: end, hash };
    }
    return held;
  } finally {
    await file.close();
  }
}
