/** The distributed pipeline end to end: real worker and coordinator processes on loopback. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COORDINATOR_EVENTS } from '@swarmbee/coordinator';
import { type ShardStoredEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { complete, startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test(
  'stories260K over 1, 2, 3 and 5 worker processes gives run.c text, streaming and not',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const refOnce = await readFile(STORIES260K.refOnceUponATime, 'utf8');
    const refNone = await readFile(STORIES260K.refNoPrompt, 'utf8');
    for (const workers of [1, 2, 3, 5]) {
      const cluster = await startCluster({
        model,
        workers,
        root,
        // One coordinator cache for every size, so shards built once are reused.
        cacheDir: (i) => join(root, `w${workers}-${i}`),
        coordinatorCacheDir: join(root, 'coordinator'),
      });
      t.teardown(() => cluster.stop());
      try {
        const once = await complete(cluster.apiUrl, {
          prompt: 'Once upon a time',
          steps: 64,
          temperature: 0,
          echo: true,
        });
        t.equal(
          `${once.json.choices[0].text}\n`,
          refOnce,
          `${workers} workers: "Once upon a time", 64 steps`,
        );
        const streamed = await runCli([
          'generate',
          '--url',
          cluster.apiUrl,
          '--steps',
          '200',
          '--temperature',
          '0',
        ]);
        t.equal(
          streamed.stdout,
          refNone,
          `${workers} workers: no prompt, 200 steps, streamed through generate --url`,
        );
        const json = await runCli([
          'generate',
          '--url',
          cluster.apiUrl,
          '--prompt',
          'Once upon a time',
          '--steps',
          '64',
          '--temperature',
          '0',
          '--json',
        ]);
        const line = JSON.parse(json.stdout);
        t.equal(`${line.text}\n`, refOnce);
        t.same(line.token_ids.slice(0, 5), [1, 403, 407, 261, 378]);
      } finally {
        await cluster.stop();
      }
    }
  },
);

t.test(
  '8 concurrent requests each get the tokens they get alone; caches survive a restart',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startCluster({
      model,
      workers: 2,
      root,
    });
    t.teardown(() => cluster.stop());
    const prompts = [
      'Once upon a time',
      'The cat',
      'Lily and Tom',
      'A big red ball',
      'Hi',
      'One day, a little bird',
      'Tim was sad',
      'The sun was hot',
    ];
    const alone: number[][] = [];
    for (const prompt of prompts)
      alone.push(
        (await complete(cluster.apiUrl, { prompt, max_tokens: 48, temperature: 0 })).json.choices[0]
          .token_ids,
      );
    const together = await Promise.all(
      prompts.map((prompt) => complete(cluster.apiUrl, { prompt, max_tokens: 48, temperature: 0 })),
    );
    together.forEach((result, i) => {
      t.same(result.json.choices[0].token_ids, alone[i], `"${prompts[i]}" alone and among 8`);
    });
    for (const worker of cluster.workers)
      t.match(worker.log(), /received and verified/, 'an empty cache receives its shard');

    // Restart worker 0 with the same cache dir. The cluster carries on without it, and the
    // next re-plan takes it back: it loads its shard from cache, nothing is sent.
    await cluster.workers[0]!.stop();
    await cluster.coordinator.waitForEvent(COORDINATOR_EVENTS.replayed);
    const again = cluster.startWorker('worker-0', join(root, 'w-0'));
    await again.waitForEvent(WORKER_EVENTS.registered);
    const replanned = await runCli(['replan', '--url', cluster.apiUrl]);
    t.equal(replanned.code, 0, replanned.stderr);
    t.match(replanned.stdout, /worker-0/, 'the re-plan uses the worker that came back');
    await again.waitForEvent<ShardStoredEvent>(WORKER_EVENTS.shardStored, {
      match: (e) => e.cached,
    });
    await again.waitForEvent(WORKER_EVENTS.stageReady);
    t.notMatch(
      again.log(),
      /received and verified/,
      'the restarted worker received no shard bytes',
    );
    const after = await complete(cluster.apiUrl, {
      prompt: prompts[0],
      max_tokens: 48,
      temperature: 0,
    });
    t.same(after.json.choices[0].token_ids, alone[0], 'and serves the same tokens');
  },
);
