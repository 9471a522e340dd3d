/**
 * `swarmbee finetune --url --federated` as users run it: a coordinator serving stories260K
 * on one worker, and data owners — workers started with `--train-data` and `--model`, each
 * with its own half of the lighthouse stories, the second on an int8 copy of the model. Rounds train on the owners, the coordinator
 * aggregates, the owners' loss falls, the adapter loads, and no record reaches the
 * coordinator. With the bandit on, each owner tries its arms. An owner killed mid-round is
 * left out of that round, which closes with the other owner; the run finishes.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openModelDir, quantizeModel, readPeftAdapter, requireLlamaDir } from '@swarmbee/model';
import { type RoundStartedEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { type ProcessHandle, startCluster, startProcess } from './helpers/cluster.js';
import { haveSharedModel, REPO_ROOT, STORIES260K } from './helpers/shared-models.js';

const CORPUS = join(REPO_ROOT, 'packages', 'bench', 'corpus');
const SETTINGS = ['--targets', 'all', '--rank', '4', '--lr', '3e-3', '--threads', '1'];
const BATCH = ['--micro-batch-size', '2', '--accumulation', '2', '--json'];

interface FederatedJson {
  rounds: {
    round: number;
    loss: number;
    owners: {
      owner: string;
      lossBefore: number;
      lossAfter: number;
      localSteps: number;
      rank: number;
      prunedLayers: number;
    }[];
    dropped: { owner: string; code: string }[];
  }[];
  bandits: { owner: string; arms: { pulls: number }[] }[];
  adapterDir: string;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map(String);
}

t.test('federated rounds over two data owners', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const records = (await readFile(join(CORPUS, 'lighthouse.jsonl'), 'utf8')).trim().split('\n');
  const halves = [records.slice(0, 18), records.slice(18)];
  // The second owner holds an int8 copy: a quantized model takes the same adapter.
  const int8 = join(root, 'stories260k-int8');
  await quantizeModel(requireLlamaDir(await openModelDir(model), 'test'), { bits: 8, out: int8 });
  const cluster = await startCluster({ model, workers: 1, root });
  t.teardown(() => cluster.stop());
  const env = { SWARMBEE_TOKEN: cluster.token };
  const owners: ProcessHandle[] = [];
  for (const [i, half] of halves.entries()) {
    const data = join(root, `owner-${i}.jsonl`);
    await writeFile(data, `${half.join('\n')}\n`);
    const owner = startProcess(
      [
        'worker',
        '--join',
        cluster.workersUrl,
        '--name',
        `owner-${i}`,
        '--listen',
        '127.0.0.1:0',
        '--cache-dir',
        join(root, `owner-cache-${i}`),
        '--train-data',
        data,
        '--model',
        i === 0 ? model : int8,
        '--threads',
        '1',
        '--log-format',
        'json',
      ],
      env,
    );
    owners.push(owner);
    t.teardown(() => owner.stop());
    await owner.waitForEvent(WORKER_EVENTS.registered);
  }
  const url = ['--url', cluster.apiUrl];

  await t.test('FedAvg rounds: the owners’ loss falls, the adapter loads', async (t) => {
    const out = join(root, 'fedavg');
    const run = await runCli(
      [
        'finetune',
        ...url,
        '--federated',
        '--rounds',
        '3',
        '--local-steps',
        '2',
        '--out',
        out,
        '--min-owners',
        '2',
        ...SETTINGS,
        ...BATCH,
      ],
      { env, timeoutMs: 240_000 },
    );
    t.equal(run.code, 0, run.code === 0 ? 'the federated run' : run.stderr);
    const result = JSON.parse(run.stdout) as FederatedJson;
    t.equal(result.rounds.length, 3);
    for (const round of result.rounds)
      t.same(
        round.owners.map((o) => o.owner).sort(),
        ['owner-0', 'owner-1'],
        `round ${round.round}: both owners`,
      );
    const first = result.rounds[0]!;
    const before = first.owners.reduce((sum, o) => sum + o.lossBefore, 0) / first.owners.length;
    t.ok(
      result.rounds[2]!.loss < before - 0.05,
      `owners' loss ${before} → ${result.rounds[2]!.loss}`,
    );
    const adapter = await readPeftAdapter(out);
    t.equal(adapter.spec.rank, 4);
    t.match(run.stderr, /round 3\/3: loss/);
    const coordinatorFiles = await filesUnder(join(root, 'c'));
    t.notOk(
      coordinatorFiles.some((f) => f.endsWith('.jsonl')),
      'no record ever reached the coordinator',
    );
  });

  await t.test('the bandit tries each arm; FedProx runs', async (t) => {
    const run = await runCli(
      [
        'finetune',
        ...url,
        '--federated',
        '--bandit',
        '--fedprox',
        '0.1',
        '--rounds',
        '4',
        '--local-steps',
        '1',
        '--out',
        join(root, 'bandit'),
        ...SETTINGS,
        ...BATCH,
      ],
      { env, timeoutMs: 240_000 },
    );
    t.equal(run.code, 0, run.code === 0 ? 'the bandit run' : run.stderr);
    const result = JSON.parse(run.stdout) as FederatedJson;
    for (const bandit of result.bandits)
      t.same(
        bandit.arms.map((a) => a.pulls),
        [1, 1, 1, 1],
        `${bandit.owner}: every arm once in 4 rounds`,
      );
    const arms = new Set(
      result.rounds.flatMap((r) => r.owners.map((o) => `${o.localSteps}/${o.rank}`)),
    );
    t.same([...arms].sort(), ['1/2', '1/4', '2/2', '2/4']);
  });

  await t.test('bandit arms that prune a layer', async (t) => {
    const run = await runCli(
      [
        'finetune',
        ...url,
        '--federated',
        '--bandit',
        '--bandit-prune',
        '1',
        '--rounds',
        '8',
        '--local-steps',
        '1',
        '--out',
        join(root, 'pruned'),
        ...SETTINGS,
        ...BATCH,
      ],
      { env, timeoutMs: 240_000 },
    );
    t.equal(run.code, 0, run.code === 0 ? 'the run with pruning arms' : run.stderr);
    const result = JSON.parse(run.stdout) as FederatedJson;
    for (const bandit of result.bandits)
      t.same(
        bandit.arms.map((a) => a.pulls),
        [1, 1, 1, 1, 1, 1, 1, 1],
        `${bandit.owner}: every arm once in 8 rounds`,
      );
    const pruned = result.rounds.flatMap((r) => r.owners.filter((o) => o.prunedLayers === 1));
    t.equal(pruned.length, 8, 'half the owner-rounds trained with a layer pruned');
    t.ok(
      (await filesUnder(join(root, 'owner-cache-0'))).some((f) => /^pruned-/.test(f)),
      "the pruned model is kept in the owner's cache",
    );
    t.equal((await readPeftAdapter(join(root, 'pruned'))).spec.layers.length, 5);
  });

  await t.test('an owner lost mid-round is left out; the run finishes', async (t) => {
    const run = startProcess(
      [
        'finetune',
        ...url,
        '--federated',
        '--rounds',
        '3',
        '--local-steps',
        '3',
        '--out',
        join(root, 'lost'),
        ...SETTINGS,
        ...BATCH,
      ],
      env,
    );
    t.teardown(() => run.stop());
    const exited = new Promise<number | null>((resolve) => run.child.once('exit', resolve));
    const since = owners[1]!.mark();
    await owners[1]!.waitForEvent<RoundStartedEvent>(WORKER_EVENTS.roundStarted, {
      since,
      match: (e) => e.round === 1,
      timeoutMs: 120_000,
    });
    await owners[1]!.stop('SIGKILL');
    const code = await exited;
    t.equal(code, 0, code === 0 ? 'the run finished' : run.log().slice(-3000));
    const line = run
      .log()
      .split('\n')
      .find((l) => l.startsWith('{"rounds"'));
    if (!line) throw new Error(`no result line in:\n${run.log().slice(-3000)}`);
    const result = JSON.parse(line) as FederatedJson;
    t.same(
      result.rounds[1]!.owners.map((o) => o.owner),
      ['owner-0'],
      'round 2 closed with owner-0',
    );
    t.same(
      result.rounds[1]!.dropped.map((d) => d.owner),
      ['owner-1'],
      'owner-1 left out',
    );
    t.same(
      result.rounds[2]!.owners.map((o) => o.owner),
      ['owner-0'],
    );
  });

  await t.test('bad input: coded errors', async (t) => {
    const withData = await runCli(
      [
        'finetune',
        ...url,
        '--federated',
        '--data',
        join(CORPUS, 'lighthouse.jsonl'),
        '--out',
        join(root, 'x'),
      ],
      { env },
    );
    t.equal(withData.code, 1);
    t.match(withData.stderr, /SWARMBEE_ERR_INVALID_ARGUMENT.*--data does not go with --federated/);
    const tooMany = await runCli(
      [
        'finetune',
        ...url,
        '--federated',
        '--min-owners',
        '5',
        '--rounds',
        '1',
        '--out',
        join(root, 'y'),
        ...SETTINGS,
      ],
      { env },
    );
    t.equal(tooMany.code, 1);
    t.match(tooMany.stderr, /SWARMBEE_ERR_CLUSTER_UNAVAILABLE.*needs 5 data owner/);
    const ownerWithoutModel = await runCli(
      ['worker', '--join', cluster.workersUrl, '--train-data', join(CORPUS, 'lighthouse.jsonl')],
      { env },
    );
    t.equal(ownerWithoutModel.code, 1);
    t.match(ownerWithoutModel.stderr, /--train-data and --model go together/);
  });
});
