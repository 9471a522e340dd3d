/**
 * One scheduler for both ways of generating: `swarmbee generate --model` (the engine's
 * `generate()` over an in-process 2-stage pipeline) and a cluster (a coordinator with two
 * worker daemons in this process, an even plan) are given the same requests at once.
 * Both must send the same micro-batches — the same rows, starts, chunk sizes and sampling
 * rows in the same order, as the scheduler's diagnostics channel reports them — and give
 * the same token ids, among them a prompt longer than one prefill chunk.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { Coordinator, type PreparedCompletion } from '@swarmbee/coordinator';
import { DEFAULT_PREFILL_CHUNK_TOKENS } from '@swarmbee/core';
import { type BatchSentEvent, ENGINE_EVENTS, generate, LocalPipeline } from '@swarmbee/engine';
import { loadTokenizer } from '@swarmbee/model';
import { WorkerDaemon } from '@swarmbee/worker';
import t from 'tap';
import { stories260kDir } from './helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** The batches one scheduler sends, with sequence ids replaced by their order of first appearance. */
function recordBatches(): { batches: string[]; stop: () => void } {
  const batches: string[] = [];
  const order = new Map<string, number>();
  let scheduler: number | undefined;
  const listener = (message: unknown) => {
    const event = message as BatchSentEvent;
    scheduler ??= event.scheduler;
    if (event.scheduler !== scheduler) return;
    const rows = event.rows.map((row) => {
      if (!order.has(row.seqId)) order.set(row.seqId, order.size);
      return `s${order.get(row.seqId)}@${row.start}+${row.count}${row.samples ? '*' : ''}`;
    });
    batches.push(rows.join(' '));
  };
  subscribe(ENGINE_EVENTS.batchSent, listener);
  return { batches, stop: () => unsubscribe(ENGINE_EVENTS.batchSent, listener) };
}

t.test(
  'generate --model and a cluster of two workers send the same micro-batches and give the same ids',
  async (t) => {
    const root = t.testdir();
    const dir = await stories260kDir(t, root);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const long = tokenizer.encode(
      'Once upon a time, there was a little girl named Lily. '.repeat(12),
    );
    t.ok(
      long.length > DEFAULT_PREFILL_CHUNK_TOKENS,
      `a ${long.length}-token prompt takes two chunks`,
    );
    const prompts = [
      tokenizer.encode('Once upon a time'),
      long,
      tokenizer.encode('The cat'),
      [1],
      tokenizer.encode('Lily and Tom went to the park'),
    ];
    const steps = [60, long.length + 24, 40, 80, 50];
    const requests = prompts.map((promptIds, i) => ({
      promptIds,
      steps: steps[i]!,
      sampling: GREEDY,
      stopIds: [...tokenizer.stopIds],
    }));

    // In process, as `swarmbee generate --model <dir> --stages 2` runs it.
    const pipeline = await LocalPipeline.create(dir, { stages: 2, stage: { intraOpThreads: 1 } });
    const local = recordBatches();
    let localIds: number[][];
    try {
      localIds = (await generate(pipeline, requests)).map((r) => r.ids);
    } finally {
      local.stop();
      await pipeline.close();
    }

    // A cluster: the coordinator and two worker daemons in this process, on loopback.
    const token = `parity-${process.pid}`;
    const coordinator = new Coordinator({
      model: dir,
      token,
      listenPort: 0,
      apiPort: 0,
      minWorkers: 2,
      cacheDir: join(root, 'c'),
      planning: { planner: 'even' },
      deploy: { stage: { intraOpThreads: 1 } },
    });
    await coordinator.start();
    const workers = [0, 1].map(
      (i) =>
        new WorkerDaemon({
          coordinatorUrl: coordinator.workersUrl,
          token,
          name: `worker-${i}`,
          cacheDir: join(root, `w-${i}`),
          threads: 1,
        }),
    );
    t.teardown(async () => {
      await coordinator.stop();
      await Promise.all(workers.map((w) => w.stop()));
    });
    await Promise.all(workers.map((w) => w.start()));
    await coordinator.whenReady();
    t.same(
      coordinator.deployment.map((s) => [s.layerStart, s.layerEnd]),
      pipeline.info.stages.map((s) => [s.layerStart, s.layerEnd]),
      'the cluster runs the same two stages',
    );
    const service = coordinator.service;
    const prepared: PreparedCompletion[] = [];
    for (const [i, promptIds] of prompts.entries())
      prepared.push(
        await service.prepare({ prompt: promptIds, steps: steps[i]!, sampling: GREEDY }),
      );
    // Submitted together, as generate() submits its requests.
    const cluster = recordBatches();
    let clusterIds: number[][];
    try {
      clusterIds = (await Promise.all(prepared.map((p) => service.run(p)))).map((r) => r.tokenIds);
    } finally {
      cluster.stop();
    }

    t.same(clusterIds, localIds, 'the same token ids');
    t.ok(local.batches.length > steps[0]!, `${local.batches.length} micro-batches in process`);
    t.ok(
      local.batches.some((b) => b.includes(`+${DEFAULT_PREFILL_CHUNK_TOKENS}`)),
      'the long prompt went in default-size chunks',
    );
    t.same(cluster.batches, local.batches, 'the same micro-batches in the same order');
  },
);
