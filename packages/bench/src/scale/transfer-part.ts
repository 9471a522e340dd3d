/**
 * The shard-transfer part of the scale benchmark: shards of random bytes sent by the
 * coordinator's own sendShard to a `swarmbee worker` process, on loopback and through the
 * user-space link shaper at 100 Mbit/s, against the link's own bandwidth measured in the
 * same run (raw bytes over the same loopback or shaped socket). Rows: a whole shard on
 * each link (the shaped one as large as asked, 4 GiB by default: it must arrive whole),
 * and a transfer cut at half way that resumes (bytes sent again counted). The worker's
 * resident memory is read before and at its peak, to show chunks are not buffered.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  sendShard,
  type TransferableShard,
  type TransferServer,
  type WorkerLink,
} from '@swarmbee/coordinator/transfer';
import { type LinkShape, ShapingProxy } from '@swarmbee/protocol';
import {
  controlServer,
  measureLinkBandwidth,
  WorkerProcess,
  writeRandomShard,
} from './transfer-peers.js';

const MIB = 2 ** 20;
/** The edge link the issue names: 100 Mbit/s, 1 ms each way. */
export const SHAPED_100_MBIT: LinkShape = { delayMs: 1, bytesPerSecond: 100e6 / 8 };
/** Default size of the shard sent whole over the shaped link, MiB (4 GiB: about six minutes). */
export const DEFAULT_SHAPED_SHARD_MIB = 4096;
/** The longest wait for the worker process to register, ms. */
const JOIN_TIMEOUT_MS = 60_000;

export interface TransferPartOptions {
  /** The `swarmbee` CLI entry point (the worker runs as its own process). */
  cliBin: string;
  /** The shard sent whole over the shaped link, MiB. Default 4096. */
  shapedShardMib?: number;
  /** The shard sent whole on loopback, MiB. Default 1024. */
  loopbackShardMib?: number;
  /** The shard whose transfer is cut at half way and resumed (shaped link), MiB. Default 256. */
  resumeShardMib?: number;
  /** One line of progress. */
  progress: (line: string) => void;
}

export interface TransferRow {
  link: 'loopback' | '100 Mbit/s';
  kind: 'whole' | 'resumed after a cut at 50 %';
  shardBytes: number;
  /** The link's own bandwidth, raw bytes over the same socket, bytes/s. */
  linkBytesPerS: number;
  /** Shard bytes over the time from offer to `shard.stored` (the worker's verification included), bytes/s. */
  transferBytesPerS: number;
  seconds: number;
  /** Bytes sent in all, passes cut short included. */
  sentBytes: number;
  /** Bytes sent more than once (sent − shard bytes). */
  resentBytes: number;
  /** The cached shard was offered again and the worker, re-verifying it, needed nothing. */
  arrivedWhole: boolean;
  /** The worker's resident memory once registered, bytes. */
  workerRssBeforeBytes?: number;
  /** The worker's peak resident memory over its life, bytes. */
  workerPeakRssBytes?: number;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Case {
  root: string;
  cliBin: string;
  shard: TransferableShard;
  shape?: LinkShape;
  linkBytesPerS: number;
  cut: boolean;
  progress: (line: string) => void;
}

async function runCase(c: Case): Promise<TransferRow> {
  const bytes = c.shard.files.reduce((n, f) => n + f.bytes, 0);
  const server: TransferServer = await controlServer();
  const proxy = c.shape
    ? await ShapingProxy.start({ host: '127.0.0.1', port: server.port }, c.shape)
    : undefined;
  const url = proxy ? `ws://127.0.0.1:${proxy.port}` : server.url;
  const cacheDir = join(c.root, `worker-${Date.now()}`);
  await mkdir(cacheDir, { recursive: true });
  const worker = new WorkerProcess(c.cliBin, url, cacheDir);
  try {
    let link: WorkerLink = await within(server.nextLink(), JOIN_TIMEOUT_MS, 'worker join');
    const before = await worker.memory();
    const label = `${c.shape ? '100 Mbit/s' : 'loopback'}, ${(bytes / MIB).toFixed(0)} MiB`;
    let lastShown = 0;
    const progress = ({ done, total }: { done: number; total?: number }) => {
      const now = performance.now();
      if (now - lastShown < 5000) return;
      lastShown = now;
      c.progress(
        `transfer: ${label}: ${(done / MIB).toFixed(0)} of ${((total ?? 0) / MIB).toFixed(0)} MiB`,
      );
    };
    const started = performance.now();
    let sentBytes = 0;
    if (c.cut) {
      const first = link;
      let firstSent = 0;
      const cut = await sendShard(first, c.shard, {
        progress: (p) => {
          progress(p);
          firstSent = p.done;
          if (p.done >= bytes / 2 && first.open) first.channel.terminate();
        },
      }).then(
        () => new Error('the transfer was not cut'),
        () => undefined,
      );
      if (cut) throw cut;
      // What the socket took before the cut: in flight then, lost, and sent again if the worker lacks it.
      sentBytes += firstSent;
      link = await within(server.nextLink(), JOIN_TIMEOUT_MS, 'worker re-join');
    }
    sentBytes += await sendShard(link, c.shard, { progress });
    const seconds = (performance.now() - started) / 1000;
    const peak = await worker.memory();
    const again = await sendShard(link, c.shard, {});
    return {
      link: c.shape ? '100 Mbit/s' : 'loopback',
      kind: c.cut ? 'resumed after a cut at 50 %' : 'whole',
      shardBytes: bytes,
      linkBytesPerS: c.linkBytesPerS,
      transferBytesPerS: bytes / seconds,
      seconds,
      sentBytes,
      resentBytes: sentBytes - bytes,
      arrivedWhole: again === 0,
      ...(before ? { workerRssBeforeBytes: before.rssBytes } : {}),
      ...(peak ? { workerPeakRssBytes: peak.peakRssBytes } : {}),
    };
  } finally {
    await worker.stop();
    await proxy?.close();
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/** Measures every row; the shards and the worker's cache live in a temporary directory, removed after. */
export async function measureShardTransfer(options: TransferPartOptions): Promise<TransferRow[]> {
  const root = await mkdtemp(join(tmpdir(), 'swarmbee-bench-transfer-'));
  const { progress, cliBin } = options;
  try {
    progress('transfer: measuring the links (raw bytes, same sockets)');
    const loopbackLink = await measureLinkBandwidth(256 * MIB);
    const shapedLink = await measureLinkBandwidth(64 * MIB, SHAPED_100_MBIT);
    const rows: TransferRow[] = [];
    const sizes: [number, LinkShape | undefined, number, boolean][] = [
      [options.loopbackShardMib ?? 1024, undefined, loopbackLink, false],
      [options.resumeShardMib ?? 256, SHAPED_100_MBIT, shapedLink, true],
      [options.shapedShardMib ?? DEFAULT_SHAPED_SHARD_MIB, SHAPED_100_MBIT, shapedLink, false],
    ];
    for (const [mib, shape, linkBytesPerS, cut] of sizes) {
      const dir = join(root, `shard-${mib}`);
      await mkdir(dir, { recursive: true });
      progress(`transfer: writing a ${mib} MiB shard`);
      const shard = await writeRandomShard(dir, mib * MIB);
      rows.push(
        await runCase({
          root,
          cliBin,
          shard,
          ...(shape ? { shape } : {}),
          linkBytesPerS,
          cut,
          progress,
        }),
      );
      await rm(dir, { recursive: true, force: true });
    }
    return rows;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
