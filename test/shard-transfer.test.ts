/**
 * Shard transfers between the coordinator's sender and a real worker daemon over
 * loopback sockets: a transfer cut by a dropped connection resumes from the worker's last
 * verified chunk and sends only the rest; a chunk corrupted on the wire is refused with
 * SHARD_CHUNK_CORRUPT, never stored, and sent again; a transfer through the link shaper
 * that keeps moving takes as long as it needs while one whose worker cannot write stalls
 * out by its progress deadline; and a disk slower than the link makes the worker stop
 * reading instead of buffering chunks.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { sendShard } from '@swarmbee/coordinator/transfer';
import { ShapingProxy } from '@swarmbee/protocol';
import {
  type OpenShardFile,
  type ShardBackpressureEvent,
  ShardCache,
  type ShardResumedEvent,
  WORKER_EVENTS,
  WorkerDaemon,
  type WorkerOptions,
} from '@swarmbee/worker';
import t, { type Test } from 'tap';
import {
  corruptingProxy,
  freshDir,
  randomShard,
  shardServer,
  TOKEN,
} from './helpers/shard-transfer.js';

const KIB = 1024;
const MIB = 1024 * KIB;

async function startWorker(
  t: Test,
  coordinatorUrl: string,
  options: Partial<WorkerOptions> = {},
): Promise<WorkerDaemon> {
  const worker = new WorkerDaemon({
    coordinatorUrl,
    token: TOKEN,
    name: 'w',
    cacheDir: await freshDir(t),
    rejoinDelayMs: 20,
    ...options,
  });
  t.teardown(() => worker.stop());
  await worker.start();
  return worker;
}

/** The payloads of a worker event published while `run` runs. */
async function collecting<T>(name: string, run: (seen: T[]) => Promise<void>): Promise<T[]> {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  subscribe(name, listener);
  try {
    await run(seen);
  } finally {
    unsubscribe(name, listener);
  }
  return seen;
}

t.test('a transfer cut by a dropped connection resumes from the last verified chunk', async (t) => {
  const server = await shardServer(t);
  const bytes = 32 * MIB;
  const chunkBytes = 256 * KIB;
  const shard = await randomShard(t, bytes);
  const cacheDir = await freshDir(t);
  const worker = await startWorker(t, server.url, { cacheDir });
  const first = await server.nextLink();
  // The coordinator drops the connection once half the shard has gone out.
  const cut = await sendShard(first, shard, {
    chunkBytes,
    progress: ({ done }) => {
      if (done >= bytes / 2 && first.open) first.channel.terminate();
    },
  }).catch((e: unknown) => e as { code: string });
  t.ok(typeof cut === 'object' && 'code' in cut, 'the first transfer failed');

  const resumed = await collecting<ShardResumedEvent>(WORKER_EVENTS.shardResumed, async () => {
    const again = await server.nextLink();
    const sent = await sendShard(again, shard, { chunkBytes });
    const held = worker.stats().shardBytesResumed ?? 0;
    t.ok(held > 0, `the worker held ${held} bytes from the first transfer`);
    t.equal(held % chunkBytes, 0, 'whole chunks');
    t.equal(sent, bytes - held, `only the remaining ${sent} bytes were sent`);
    t.ok(sent < bytes, 'not from zero');
  });
  t.equal(resumed.length, 1);
  t.equal(resumed[0]?.bytes, bytes);
  const cache = new ShardCache(cacheDir);
  t.ok(await cache.has({ shardId: shard.manifest.shardId, bytes, files: shard.files }));
});

t.test(
  'BAD CHUNK - a chunk corrupted on the wire is refused with its code, never stored, and sent again',
  async (t) => {
    const server = await shardServer(t);
    const bytes = 8 * MIB;
    const chunkBytes = 256 * KIB;
    const marker = randomBytes(32);
    const at = 5 * MIB + 1000;
    const shard = await randomShard(t, bytes, { at, bytes: marker });
    const proxy = await corruptingProxy(t, server.port, marker);
    const cacheDir = await freshDir(t);
    const worker = await startWorker(t, `ws://127.0.0.1:${proxy.port}`, { cacheDir });
    const link = await server.nextLink();
    const refusals: { code: string; retryable: boolean }[] = [];
    link.onError((error) => refusals.push(error));
    const logs: string[] = [];
    const resumed = await collecting<ShardResumedEvent>(WORKER_EVENTS.shardResumed, async () => {
      const sent = await sendShard(link, shard, { chunkBytes, log: (l) => logs.push(l) });
      t.ok(proxy.flipped(), 'one byte was flipped on the wire');
      t.ok(sent > bytes, `${sent - bytes} bytes sent again`);
      t.ok(
        sent - bytes <= bytes - Math.floor(at / chunkBytes) * chunkBytes,
        'from the refused chunk on',
      );
    });
    t.match(refusals, [{ code: 'SWARMBEE_ERR_SHARD_CHUNK_CORRUPT', retryable: true }]);
    t.match(logs.join('\n'), /refused a chunk: .* of weights.bin has sha256/);
    t.equal(worker.stats().shardChunksRefused, 1);
    t.equal(
      resumed[0]?.verifiedBytes,
      Math.floor(at / chunkBytes) * chunkBytes,
      'resent from the refused chunk: every chunk before it was kept',
    );
    const cache = new ShardCache(cacheDir);
    t.ok(
      await cache.has({ shardId: shard.manifest.shardId, bytes, files: shard.files }),
      'the stored shard is the one sent',
    );
  },
);

t.test(
  'through the link shaper, a slow transfer that moves takes its time; one that cannot write stalls out',
  async (t) => {
    const server = await shardServer(t);
    const bytesPerSecond = 16e6;
    const shaper = await ShapingProxy.start(
      { host: '127.0.0.1', port: server.port },
      { delayMs: 2, bytesPerSecond },
    );
    t.teardown(() => shaper.close());
    // The stall timeout is a deadline on progress: far above one 64 KiB chunk's 4 ms at
    // this rate, so only a stalled link (or a process starved that long) reaches it.
    const stallMs = 1500;
    // Larger than what the shaper (8 MiB), the worker (16 MiB waiting for its disk) and
    // the sockets hold between them, so the sender itself is paced by the link for longer
    // than the stall timeout, not only the arrival.
    const bytes = 48 * MIB;
    const shard = await randomShard(t, bytes);
    await startWorker(t, `ws://127.0.0.1:${shaper.port}`);
    const link = await server.nextLink();
    const sending = { first: 0, last: 0 };
    const sent = await sendShard(link, shard, {
      chunkBytes: 64 * KIB,
      transferStallTimeoutMs: stallMs,
      progress: () => {
        sending.last = performance.now();
        sending.first ||= sending.last;
      },
    });
    const sendingMs = sending.last - sending.first;
    t.equal(sent, bytes);
    t.ok(
      sendingMs > stallMs,
      `the sender streamed for ${sendingMs.toFixed(0)} ms (${(bytes / bytesPerSecond).toFixed(1)} s at the link's pace), past the stall timeout`,
    );

    // A worker whose disk never finishes a write: it stops reading, the link fills, the sender waits.
    let release!: () => void;
    const never = new Promise<void>((resolve) => {
      release = resolve;
    });
    t.teardown(() => release());
    const stuck: OpenShardFile = async () => ({
      write: () => never,
      close: async () => {},
    });
    await startWorker(t, `ws://127.0.0.1:${shaper.port}`, {
      name: 'stuck',
      openShardFile: stuck,
      maxPendingShardBytes: 256 * KIB,
    });
    const stuckLink = await server.nextLink();
    const stalledAt = performance.now();
    const error = (await sendShard(stuckLink, await randomShard(t, 32 * MIB), {
      chunkBytes: 64 * KIB,
      transferStallTimeoutMs: stallMs,
    }).catch((e: unknown) => e)) as { code: string; message: string };
    const stalledMs = performance.now() - stalledAt;
    t.equal(error.code, 'SWARMBEE_ERR_TIMEOUT', error.message);
    t.match(error.message, new RegExp(`no progress on sending shard .* for ${stallMs} ms`));
    t.ok(stalledMs < 30_000, `gave up after ${stalledMs.toFixed(0)} ms`);
  },
);

t.test(
  'a disk slower than the link: the worker stops reading, its buffered chunks stay bounded',
  async (t) => {
    const server = await shardServer(t);
    const bytes = 32 * MIB;
    const chunkBytes = 128 * KIB;
    const maxPending = 1 * MIB;
    // The test's disk: every write waits until the test opens the gate.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    t.teardown(() => open());
    const { open: openFile } = await import('node:fs/promises');
    const slow: OpenShardFile = async (path) => {
      const handle = await openFile(path, 'a+');
      return {
        write: async (data, offset, length, position) => {
          await gate;
          return handle.write(data, offset, length, position);
        },
        close: () => handle.close(),
      };
    };
    const worker = await startWorker(t, server.url, {
      openShardFile: slow,
      maxPendingShardBytes: maxPending,
    });
    const link = await server.nextLink();
    const shard = await randomShard(t, bytes);
    let sentWhilePaused = 0;
    let sentSoFar = 0;
    const events = await collecting<ShardBackpressureEvent>(
      WORKER_EVENTS.shardBackpressure,
      async (seen) => {
        const transfer = sendShard(link, shard, {
          chunkBytes,
          progress: ({ done }) => {
            sentSoFar = done;
          },
        });
        // Wait (bounded) for the worker to pause, then give the sender time to fill the link.
        for (let i = 0; i < 500 && seen.length === 0; i++)
          await new Promise((resolve) => setTimeout(resolve, 10));
        t.ok(seen[0]?.paused, 'the worker stopped reading');
        await new Promise((resolve) => setTimeout(resolve, 500));
        sentWhilePaused = sentSoFar;
        t.ok(
          worker.stats().shardPendingBytesPeak! <= maxPending + 4 * chunkBytes,
          `at most ${worker.stats().shardPendingBytesPeak} bytes waited for the disk`,
        );
        open();
        t.equal(await transfer, bytes, 'the whole shard arrived once the disk caught up');
      },
    );
    t.ok(
      sentWhilePaused < bytes / 2,
      `the sender was held back at ${sentWhilePaused} of ${bytes} bytes while the disk stood still`,
    );
    t.ok(
      events.some((e) => !e.paused),
      'reading resumed',
    );
    t.ok(worker.stats().shardPendingBytesPeak! <= maxPending + 4 * chunkBytes);
  },
);
