/**
 * The coordinator's side of a worker's control connection, over real loopback sockets
 * with a scripted worker: exchanges leave nothing behind however they end, and a shard
 * transfer's deadline is about progress, not total time.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@swarmbee/model';
import {
  type Channel,
  type ControlMessage,
  connect,
  listen,
  type ServerChannel,
} from '@swarmbee/protocol';
import t, { type Test } from 'tap';
import type { StoredShard } from '../src/cluster/shard-store.js';
import { sendShard } from '../src/cluster/shard-transfer.js';
import { WorkerLink } from '../src/cluster/worker-link.js';

const TOKEN = 'worker-link-test-token';
const DEVICE = {
  arch: 'x64',
  platform: 'linux',
  cpus: 2,
  memoryBytes: 1e9,
  freeMemoryBytes: 1e9,
  ortVersion: 'test',
  executionProvider: 'cpu',
  nodeVersion: process.version,
};

/** A coordinator-side link to a scripted worker (the client end, returned too). */
async function linkPair(t: Test): Promise<{ link: WorkerLink; worker: Channel<'control'> }> {
  let accepted!: (channel: ServerChannel) => void;
  const serverSide = new Promise<ServerChannel>((resolve) => {
    accepted = resolve;
  });
  const server = await listen({ host: '127.0.0.1', port: 0, token: TOKEN }, (channel) =>
    accepted(channel),
  );
  t.teardown(() => server.close());
  const worker = await connect(server.url, { token: TOKEN, role: 'worker', name: 'w' });
  t.teardown(() => worker.terminate());
  const channel = (await serverSide) as Channel<'control'>;
  return { link: new WorkerLink('w', DEVICE, 'ws://127.0.0.1:1', channel), worker };
}

/** A shard on disk: one file of `bytes` random bytes. */
async function shardOf(t: Test, bytes: number): Promise<StoredShard> {
  const dir = t.testdir();
  const data = randomBytes(bytes);
  await writeFile(join(dir, 'weights.bin'), data);
  const file = { name: 'weights.bin', bytes, sha256: sha256(data) };
  return {
    path: dir,
    manifest: { shardId: sha256(Buffer.from(file.sha256)) },
    files: [file],
  } as unknown as StoredShard;
}

/** A worker that wants every shard, counts its bytes and stores it when done. */
function receiving(worker: Channel<'control'>, received: { bytes: number }) {
  return (message: ControlMessage) => {
    if (message.type === 'shard.offer')
      worker.send({ type: 'shard.need', shardId: message.shardId, have: false });
    else if (message.type === 'shard.chunk') received.bytes += message.data.byteLength;
    else if (message.type === 'shard.done')
      worker.send({ type: 'shard.stored', shardId: message.shardId });
  };
}

t.test(
  'an exchange that times out, is aborted, or meets a closing channel leaves no waiter',
  async (t) => {
    const { link, worker } = await linkPair(t);
    const offers: string[] = [];
    worker.on('message', (m) => {
      if (m.type === 'shard.offer') offers.push(m.shardId);
    });
    const offer = (shardId: string): ControlMessage => ({
      type: 'shard.offer',
      shardId,
      bytes: 1,
      files: [{ name: 'a', bytes: 1, sha256: 'a'.repeat(64) }],
    });
    const x = 'a'.repeat(64);

    const timedOut = await link
      .exchange(offer(x), 'shard.need', (m) => m.shardId === x, { timeoutMs: 100 })
      .catch((e: unknown) => e);
    t.equal((timedOut as { code: string }).code, 'SWARMBEE_ERR_TIMEOUT');
    t.equal(link.waiting, 0, 'the timed-out waiter is gone');

    // An aborted exchange must not swallow the answer meant for the next one.
    const abort = new AbortController();
    const aborted = link.exchange(offer(x), 'shard.need', (m) => m.shardId === x, {
      timeoutMs: 5_000,
      signal: abort.signal,
    });
    abort.abort();
    t.equal(
      ((await aborted.catch((e: unknown) => e)) as { code: string }).code,
      'SWARMBEE_ERR_ABORTED',
    );
    t.equal(link.waiting, 0, 'the aborted waiter is gone');
    const next = link.exchange(offer(x), 'shard.need', (m) => m.shardId === x, {
      timeoutMs: 5_000,
    });
    while (offers.length < 3) await new Promise((resolve) => setImmediate(resolve));
    worker.send({ type: 'shard.need', shardId: x, have: true });
    t.equal((await next).have, true, 'the next exchange gets its answer');

    // The deployer's old crash: a send on a closing channel.
    link.close('test closes it');
    const closing = await link
      .exchange(offer(x), 'shard.need', (m) => m.shardId === x, { timeoutMs: 5_000 })
      .catch((e: unknown) => e);
    t.equal((closing as { code: string }).code, 'SWARMBEE_ERR_CHANNEL_CLOSED');
    t.equal(link.waiting, 0);
  },
);

t.test('a worker that closes mid-exchange fails the exchange, and the process lives', async (t) => {
  const { link, worker } = await linkPair(t);
  const pending = link.exchange(
    {
      type: 'stage.load',
      stage: 0,
      layerStart: 0,
      layerEnd: 1,
      shardId: 'b'.repeat(64),
      isFirst: true,
      isLast: true,
      options: {},
    },
    'stage.ready',
    () => true,
    { timeoutMs: 10_000 },
  );
  worker.terminate();
  const error = (await pending.catch((e: unknown) => e)) as { code: string; retryable: boolean };
  t.ok(error.retryable, `${error.code} is retryable`);
  t.equal(link.open, false);
  t.equal(link.waiting, 0);
});

t.test('a shard transfer that stalls fails with TIMEOUT after the stall timeout', async (t) => {
  const { link, worker } = await linkPair(t);
  const shard = await shardOf(t, 48 * 2 ** 20);
  const received = { bytes: 0 };
  const onMessage = (message: ControlMessage) => {
    receiving(worker, received)(message);
    // Took the offer, then stops reading: its socket fills and the sender's writes wait.
    if (message.type === 'shard.offer') worker.off('message', onMessage);
  };
  worker.on('message', onMessage);
  const stallMs = 400;
  const started = performance.now();
  const error = (await sendShard(link, shard, {
    chunkBytes: 256 * 1024,
    transferStallTimeoutMs: stallMs,
  }).catch((e: unknown) => e)) as { code: string; message: string };
  const tookMs = performance.now() - started;
  t.equal(error.code, 'SWARMBEE_ERR_TIMEOUT', error.message);
  t.match(error.message, /no progress .* for 400 ms/);
  t.ok(tookMs >= stallMs && tookMs < stallMs + 3_000, `gave up after ${tookMs.toFixed(0)} ms`);
  t.equal(link.waiting, 0);
});

t.test('a slow transfer that keeps moving takes as long as it needs', async (t) => {
  const { link, worker } = await linkPair(t);
  const shard = await shardOf(t, 96 * 2 ** 20);
  const received = { bytes: 0 };
  const onMessage = receiving(worker, received);
  // Reads in short bursts with long pauses: each pause is under the stall timeout.
  let timer: NodeJS.Timeout | undefined;
  const read = () => {
    worker.on('message', onMessage);
    timer = setTimeout(pause, 10);
  };
  const pause = () => {
    worker.off('message', onMessage);
    timer = setTimeout(read, 200);
  };
  read();
  t.teardown(() => clearTimeout(timer));
  // Pauses of 200 ms against a 1500 ms stall timeout: room for a loaded machine's late timers.
  const stallMs = 1500;
  const started = performance.now();
  const sent = await sendShard(link, shard, {
    chunkBytes: 256 * 1024,
    transferStallTimeoutMs: stallMs,
  });
  const tookMs = performance.now() - started;
  clearTimeout(timer);
  t.equal(sent, shard.files[0]!.bytes);
  t.equal(received.bytes, sent, 'every byte arrived');
  t.ok(tookMs > stallMs, `took ${tookMs.toFixed(0)} ms, longer than the stall timeout`);
  t.equal(link.waiting, 0);
});
