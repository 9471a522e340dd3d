/**
 * Shard transfer and memory on real `swarmbee` processes: a worker killed mid-transfer and
 * started again on the same cache resumes from its last verified chunk (only the rest is
 * sent); and a worker whose memory cannot hold its stage's shard plus KV budget refuses
 * the offer with MEMORY_SHORT naming the numbers, before receiving a byte — the
 * coordinator reports it and fails requests with a coded error instead of hanging.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sendShard } from '@swarmbee/coordinator/transfer';
import { ShapingProxy } from '@swarmbee/protocol';
import type { ShardResumedEvent } from '@swarmbee/worker';
import t from 'tap';
import { importStories260k } from './helpers/cli.js';
import { startProcess } from './helpers/cluster.js';
import { freshDir, randomShard, shardServer, TOKEN } from './helpers/shard-transfer.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const MIB = 2 ** 20;

t.test(
  'a worker killed mid-transfer resumes from its last verified chunk when it restarts',
  async (t) => {
    const server = await shardServer(t);
    // Shaped, so half way is a moment the test can catch: 48 MiB at 24 MB/s.
    const shaper = await ShapingProxy.start(
      { host: '127.0.0.1', port: server.port },
      { delayMs: 1, bytesPerSecond: 24e6 },
    );
    t.teardown(() => shaper.close());
    const bytes = 48 * MIB;
    const shard = await randomShard(t, bytes);
    const cacheDir = await freshDir(t);
    const startWorker = () => {
      const worker = startProcess(
        [
          'worker',
          '--join',
          `ws://127.0.0.1:${shaper.port}`,
          '--name',
          'w',
          '--listen',
          '127.0.0.1:0',
          '--cache-dir',
          cacheDir,
          '--log-format',
          'json',
        ],
        { SWARMBEE_TOKEN: TOKEN },
      );
      t.teardown(() => worker.stop());
      return worker;
    };
    const first = startWorker();
    const link = await server.nextLink();
    let killed: Promise<unknown> | undefined;
    const cut = await sendShard(link, shard, {
      chunkBytes: 256 * 1024,
      progress: ({ done }) => {
        if (done >= bytes / 2) killed ??= first.stop('SIGKILL');
      },
    }).catch((e: unknown) => e as { code: string });
    await killed;
    t.ok(cut && typeof cut === 'object' && 'code' in cut, 'the transfer failed with the worker');

    const second = startWorker();
    const again = await server.nextLink();
    const sent = await sendShard(again, shard, { chunkBytes: 256 * 1024 });
    const resumed = await second.waitForEvent<ShardResumedEvent>('swarmbee:worker:shard-resumed');
    t.ok(resumed.verifiedBytes > 0, `the restarted worker held ${resumed.verifiedBytes} bytes`);
    t.equal(sent, bytes - resumed.verifiedBytes, `only the remaining ${sent} bytes were sent`);
    t.equal(
      await sendShard(again, shard, {}),
      0,
      'offered again, the shard is in the cache, whole',
    );
    t.same(
      (await readdir(join(cacheDir, 'shards'))).filter((n) => n.startsWith('.incoming-')),
      [],
      'no partial transfer left behind',
    );
  },
);

t.test(
  'BAD INPUT - a stage that cannot fit the worker memory is refused with MEMORY_SHORT before any byte is sent',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const env = { SWARMBEE_TOKEN: `memory-test-${process.pid}` };
    const coordinator = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        '127.0.0.1:0',
        '--api',
        '127.0.0.1:0',
        '--min-workers',
        '1',
        '--planner',
        'even',
        '--cache-dir',
        join(root, 'c'),
        '--log-format',
        'json',
      ],
      env,
    );
    t.teardown(() => coordinator.stop());
    const listening = await coordinator.waitForEvent<{ workersUrl: string; apiUrl: string }>(
      'swarmbee:coordinator:listening',
    );
    const cacheDir = join(root, 'w');
    // A KV budget of 100 TB: no machine's free memory holds it.
    const worker = startProcess(
      [
        'worker',
        '--join',
        listening.workersUrl,
        '--name',
        'small',
        '--listen',
        '127.0.0.1:0',
        '--cache-dir',
        cacheDir,
        '--kv-budget-mib',
        String(100e12 / MIB),
        '--log-format',
        'json',
      ],
      env,
    );
    t.teardown(() => worker.stop());
    const [line] = await coordinator.waitFor(
      /deployment attempt 1 failed: SWARMBEE_ERR_MEMORY_SHORT: [^"]*/,
      60_000,
    );
    t.match(
      line,
      /worker small cannot hold shard [0-9a-f]{12}: shard \d+ bytes .* \+ KV budget 100000000000000 bytes .* but it has free \d+ bytes .*: \d+ bytes .* short/,
      'the refusal names the shard, the KV budget, the free memory and the shortfall',
    );
    const response = await fetch(`${listening.apiUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'any', prompt: 'Once', max_tokens: 2 }),
    });
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    t.equal(response.status, 503, 'requests fail at once, with a coded error');
    t.match(body.error?.message, /MEMORY_SHORT/, 'naming why');
    const shards = await readdir(join(cacheDir, 'shards')).catch(() => [] as string[]);
    t.same(shards, [], 'nothing was received: no shard, no partial transfer');
  },
);
