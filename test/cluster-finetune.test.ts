/**
 * `swarmbee finetune --url`: LoRA training over a deployed cluster of worker processes,
 * stories260K on three stages. The per-step loss equals the same run's in one process over
 * the same three layer ranges, and so do the adapters; each worker trained its own layers
 * (its training-started event). With --pin-private only the middle stage trains on a
 * worker. Killing a worker mid-run costs the steps since the last checkpoint: the run goes
 * on on the coordinator's new deployment and ends with the same losses.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Plan, StagePlan } from '@swarmbee/core';
import { readPeftAdapter } from '@swarmbee/model';
import { type TrainingStartedEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t, { type Test } from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { startCluster, startProcess } from './helpers/cluster.js';
import { haveSharedModel, REPO_ROOT, STORIES260K } from './helpers/shared-models.js';

const CORPUS = join(REPO_ROOT, 'packages', 'bench', 'corpus');
const STEPS = 8;
const TRAIN = [
  '--data',
  join(CORPUS, 'lighthouse.jsonl'),
  '--targets',
  'all',
  '--rank',
  '4',
  '--lr',
  '3e-3',
  '--steps',
  String(STEPS),
  '--micro-batch-size',
  '2',
  '--accumulation',
  '3',
  '--threads',
  '1',
  '--checkpoint-interval',
  '2',
  '--json',
];

interface Result {
  steps: number;
  history: { step: number; loss: number }[];
  placement?: string[];
  adapterDir?: string;
}

function parseResult(output: string): Result {
  const line = output.split('\n').find((l) => l.startsWith('{"steps"'));
  if (!line) throw new Error(`no result line in:\n${output.slice(-2000)}`);
  return JSON.parse(line) as Result;
}

/** Relative difference, with a floor for values near zero. */
const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-6, Math.abs(b));

t.test('fine-tuning over three worker processes', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const manifest = JSON.parse(await readFile(join(model, 'manifest.json'), 'utf8'));
  const ranges = [
    [0, 2],
    [2, 4],
    [4, 5],
  ] as const;
  const stages: StagePlan[] = ranges.map(([start, end], i) => ({
    index: i,
    device: `worker-${i}`,
    layerStart: start,
    layerEnd: end,
  }));
  const plan: Plan = { modelHash: manifest.modelHash, nLayers: 5, stages };
  const planFile = join(root, 'plan.json');
  await writeFile(planFile, JSON.stringify(plan));

  // The reference: the same run in one process, over the same three layer ranges.
  const local = await runCli(
    ['finetune', '--model', model, '--out', join(root, 'local'), '--stages', '3', ...TRAIN],
    { timeoutMs: 240_000 },
  );
  t.equal(local.code, 0, local.code === 0 ? 'the in-process run' : local.stderr);
  const reference = parseResult(local.stdout);
  t.equal(reference.history.length, STEPS);

  const cluster = await startCluster({
    model,
    workers: 3,
    root,
    coordinatorArgs: ['--plan', planFile],
  });
  t.teardown(() => cluster.stop());
  const apiArgs = ['--url', cluster.apiUrl];
  const env = { SWARMBEE_TOKEN: cluster.token };

  const compare = (t: Test, result: Result, what: string) => {
    t.equal(result.steps, STEPS, `${what}: every step`);
    const worst = Math.max(
      ...result.history.map((h, i) => relative(h.loss, reference.history[i]!.loss)),
    );
    t.ok(worst < 1e-5, `${what}: per-step loss equals the in-process run's (worst ${worst})`);
  };

  await t.test('every stage trains on its worker; losses and adapters equal', async (t) => {
    const marks = cluster.workers.map((w) => w.mark());
    const out = join(root, 'cluster');
    const run = await runCli(['finetune', ...apiArgs, '--out', out, ...TRAIN], {
      env,
      timeoutMs: 240_000,
    });
    t.equal(run.code, 0, run.code === 0 ? 'the run on the cluster' : run.stderr);
    const result = parseResult(run.stdout);
    compare(t, result, 'cluster');
    t.same(result.placement, ['worker-0', 'worker-1', 'worker-2']);
    for (const [i, worker] of cluster.workers.entries()) {
      const started = await worker.waitForEvent<TrainingStartedEvent>(
        WORKER_EVENTS.trainingStarted,
        { since: marks[i]!, timeoutMs: 5000 },
      );
      t.same([started.layerStart, started.layerEnd], ranges[i], `worker-${i} trained its layers`);
      t.same(
        started.links,
        { prev: i > 0, next: i < 2 },
        `worker-${i} hands activations and gradients to its neighbours directly`,
      );
    }
    const trained = await readPeftAdapter(out);
    const expected = await readPeftAdapter(join(root, 'local'));
    let worst = 0;
    for (const [name, value] of expected.tensors) {
      const got = trained.tensors.get(name)!;
      for (let i = 0; i < value.length; i++) worst = Math.max(worst, Math.abs(got[i]! - value[i]!));
    }
    t.ok(worst < 1e-5, `adapter tensors equal the in-process run's (worst |Δ| ${worst})`);
  });

  await t.test('--pin-private keeps the first and last stage on the coordinator', async (t) => {
    const marks = cluster.workers.map((w) => w.mark());
    const run = await runCli(
      ['finetune', ...apiArgs, '--pin-private', '--out', join(root, 'private'), ...TRAIN],
      { env, timeoutMs: 240_000 },
    );
    t.equal(run.code, 0, run.code === 0 ? 'the run on the cluster' : run.stderr);
    const result = parseResult(run.stdout);
    compare(t, result, 'pinned');
    t.same(result.placement, ['local', 'worker-1', 'local']);
    const middle = await cluster.workers[1]!.waitForEvent<TrainingStartedEvent>(
      WORKER_EVENTS.trainingStarted,
      { since: marks[1]!, timeoutMs: 5000 },
    );
    t.equal(middle.layerStart, 2);
    t.same(middle.links, { prev: false, next: false }, 'its neighbours train on the coordinator');
    for (const i of [0, 2])
      t.notMatch(
        cluster.workers[i]!.log().slice(marks[i]!),
        WORKER_EVENTS.trainingStarted,
        `worker-${i} saw no training`,
      );
  });

  await t.test('one job at a time: a second is TRAINING_BUSY', async (t) => {
    const first = startProcess(
      ['finetune', ...apiArgs, '--out', join(root, 'first'), ...TRAIN],
      env,
    );
    t.teardown(() => first.stop());
    const exited = new Promise<number | null>((resolve) => first.child.once('exit', resolve));
    await first.waitFor(/step 1\/8/, 120_000);
    const second = await runCli(['finetune', ...apiArgs, '--out', join(root, 'second'), ...TRAIN], {
      env,
    });
    t.equal(second.code, 1);
    t.match(second.stderr, /SWARMBEE_ERR_TRAINING_BUSY/);
    t.equal(await exited, 0, 'the first job finishes');
  });

  await t.test('a worker lost mid-run costs the steps since the checkpoint', async (t) => {
    const run = startProcess(
      ['finetune', ...apiArgs, '--out', join(root, 'failover'), ...TRAIN],
      env,
    );
    t.teardown(() => run.stop());
    const exited = new Promise<number | null>((resolve) => run.child.once('exit', resolve));
    await run.waitFor(/checkpoint after step 2/, 120_000);
    await cluster.workers[1]!.stop('SIGKILL');
    const code = await exited;
    t.equal(code, 0, code === 0 ? 'the run survived' : run.log().slice(-3000));
    t.match(run.log(), /going on from step \d+ on the new deployment \(\d+ steps? lost\)/);
    const result = parseResult(run.log());
    t.equal(result.placement?.length, 2, 'the new deployment has two stages');
    t.equal(result.steps, STEPS);
    const worst = Math.max(
      ...result.history.map((h, i) => relative(h.loss, reference.history[i]!.loss)),
    );
    // Another split of the layers sums in another order: equal to float32 rounding.
    t.ok(worst < 1e-4, `per-step loss equals the uninterrupted run's (worst ${worst})`);
  });
});
