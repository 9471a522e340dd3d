/**
 * The two ends of a measured shard transfer, without a model: the coordinator's control
 * server (workers register through its own WorkerRegistry; shards go out through its own
 * sendShard) and a `swarmbee worker` process, optionally behind the user-space link
 * shaper; a shard file of random bytes; and the link's raw bandwidth, measured as bytes
 * through the same loopback or shaped socket, with no protocol on it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import {
  type TransferableShard,
  type TransferServer,
  transferServer,
} from '@swarmbee/coordinator/transfer';
import { ChunkedSha256, writeChunkDigests } from '@swarmbee/model';
import { type LinkShape, ShapingProxy } from '@swarmbee/protocol';

export const BENCH_TOKEN = `bench-transfer-${process.pid}`;

/** A transfer server on 127.0.0.1:0 for the bench's workers. */
export function controlServer(): Promise<TransferServer> {
  return transferServer({ token: BENCH_TOKEN });
}

/** A `swarmbee worker` process joining `url`; `peakRssBytes` reads its VmHWM (Linux). */
export class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  constructor(cliBin: string, url: string, cacheDir: string) {
    this.#child = spawn(
      process.execPath,
      [
        cliBin,
        'worker',
        '--join',
        url,
        '--name',
        'bench-transfer',
        '--listen',
        '127.0.0.1:0',
        '--cache-dir',
        cacheDir,
      ],
      { env: { ...process.env, SWARMBEE_TOKEN: BENCH_TOKEN }, stdio: 'ignore' },
    );
    this.#exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
  }

  /** The process's resident memory now and at its peak, bytes (undefined off Linux). */
  async memory(): Promise<{ rssBytes: number; peakRssBytes: number } | undefined> {
    const status = await readFile(`/proc/${this.#child.pid}/status`, 'utf8').catch(() => '');
    const kib = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1]);
    const rss = kib('VmRSS');
    const peak = kib('VmHWM');
    return Number.isFinite(rss) && Number.isFinite(peak)
      ? { rssBytes: rss * 1024, peakRssBytes: peak * 1024 }
      : undefined;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Writes a shard of one file of `bytes` pseudo-random bytes (64 MiB blocks, each stamped), hashing as it goes. */
export async function writeRandomShard(dir: string, bytes: number): Promise<TransferableShard> {
  const blockBytes = 64 * 2 ** 20;
  const block = randomFillSync(Buffer.alloc(Math.min(blockBytes, bytes)));
  // Its chunk digests recorded as a shard's writer records them: the first send does not hash.
  const hash = new ChunkedSha256();
  const file = await open(join(dir, 'weights.bin'), 'w');
  try {
    for (let at = 0, index = 0; at < bytes; at += block.length, index++) {
      block.writeUInt32LE(index, 0);
      const part = block.subarray(0, Math.min(block.length, bytes - at));
      hash.update(part);
      await file.write(part, 0, part.length, at);
    }
  } finally {
    await file.close();
  }
  const sha256 = hash.digest();
  await writeChunkDigests(dir, hash.chunkBytes, [{ name: 'weights.bin', digests: hash.digests }]);
  return {
    path: dir,
    manifest: { shardId: createHash('sha256').update(sha256).digest('hex') },
    files: [{ name: 'weights.bin', bytes, sha256 }],
  };
}

/**
 * The link's own bandwidth, bytes/s: `bytes` written raw through a TCP socket to a sink on
 * loopback, through a shaping proxy of `shape` when given, timed until the sink has them all.
 */
export async function measureLinkBandwidth(bytes: number, shape?: LinkShape): Promise<number> {
  let received = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const sink = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= bytes) done();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const sinkPort = (sink.address() as { port: number }).port;
  const proxy = shape
    ? await ShapingProxy.start({ host: '127.0.0.1', port: sinkPort }, shape)
    : undefined;
  const socket = tcpConnect(proxy?.port ?? sinkPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const block = Buffer.alloc(1024 * 1024, 7);
  const started = performance.now();
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!socket.write(block.subarray(0, Math.min(block.length, bytes - sent))))
      await new Promise((resolve) => socket.once('drain', resolve));
  }
  await all;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  await proxy?.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
  return bytes / seconds;
}
