/**
 * Tensor-parallel stages over worker processes, deployed by `swarmbee coordinator --plan`:
 * stories260K (4 KV heads) as one TP2 stage (star), as one TP3 stage split 2:1:1 (ring), and as a
 * pipeline of one worker then a TP2 group — greedy ids equal to the unsplit model's, text
 * equal to run.c's. Four workers serve all three: each plan's coordinator takes over the
 * last one's ports, and the workers join it again. Then a member of the TP2 group, and
 * after it the leader of another, is killed after the first token: the coordinator re-plans
 * without it as for a lost stage, the stream completes with the same text, and the member
 * left standing leaves the group.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COORDINATOR_EVENTS, type CoordinatorStateEvent } from '@swarmbee/coordinator';
import type { Plan, StagePlan } from '@swarmbee/core';
import { GROUP_EVENTS } from '@swarmbee/protocol';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import {
  type Cluster,
  complete,
  coordinatorArgs,
  type ProcessHandle,
  startCluster,
  startProcess,
} from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const W = ['worker-0', 'worker-1', 'worker-2', 'worker-3'];

interface ClusterJson {
  state: string;
  stages: { stage: number; worker: string; members?: string[] }[];
}

/** A stage of layers [start, end) on `devices` (a tensor group when there are 2 or more). */
function stage(
  index: number,
  start: number,
  end: number,
  devices: string[],
  weights?: number[],
  allReduce: 'star' | 'ring' = 'star',
): StagePlan {
  const planned: StagePlan = { index, device: devices[0]!, layerStart: start, layerEnd: end };
  if (devices.length > 1)
    planned.tensor = { devices, weights: weights ?? devices.map(() => 1), allReduce };
  return planned;
}

t.test("tensor-parallel plans over worker processes give the unsplit model's ids", async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const manifest = JSON.parse(await readFile(join(model, 'manifest.json'), 'utf8'));
  const refOnce = await readFile(STORIES260K.refOnceUponATime, 'utf8');
  const refNone = await readFile(STORIES260K.refNoPrompt, 'utf8');
  const plans: Record<string, Plan> = {};
  const planFile = async (name: string, stages: StagePlan[]) => {
    plans[name] = { modelHash: manifest.modelHash, nLayers: 5, stages };
    const file = join(root, `${name}.json`);
    await writeFile(file, JSON.stringify(plans[name]));
    return file;
  };
  const tp2 = await planFile('tp2', [stage(0, 0, 5, [W[0]!, W[1]!])]);
  const tp3 = await planFile('tp3', [stage(0, 0, 5, [W[0]!, W[1]!, W[2]!], [2, 1, 1], 'ring')]);
  // More members than stories260K's 4 KV heads: refused before anything starts.
  const tp5 = await planFile('tp5', [stage(0, 0, 5, W.concat('worker-4'))]);
  const refused = await runCli(
    coordinatorArgs({ model, minWorkers: 1, cacheDir: join(root, 'c'), extra: ['--plan', tp5] }),
    { env: { SWARMBEE_TOKEN: 'unused' } },
  );
  t.equal(refused.code, 1, 'a plan that cannot be split stops the coordinator');
  t.match(
    refused.stderr,
    /SWARMBEE_ERR_PLAN_INVALID: .*stage 0 cannot be split by weights 1:1:1:1:1: cannot split 4 KV heads across 5 members/,
    'naming what is wrong',
  );
  const pptp = await planFile('pptp', [stage(0, 0, 2, [W[3]!]), stage(1, 2, 5, [W[0]!, W[1]!])]);

  /** A greedy `swarmbee generate` of `steps` tokens from `source` (--model DIR or --url URL). */
  const greedy = (source: string[], steps: number, more: string[] = []) =>
    runCli(['generate', ...source, '--steps', String(steps), '--temperature', '0', ...more]);
  // The unsplit model's greedy ids, in process.
  const unsplit = JSON.parse(
    (await greedy(['--model', model], 64, ['--prompt', 'Once upon a time', '--json'])).stdout,
  ) as { token_ids: number[] };

  const cluster: Cluster = await startCluster({
    model,
    workers: 4,
    root,
    coordinatorArgs: ['--plan', tp2],
  });
  t.teardown(() => cluster.stop());
  const coordinators: ProcessHandle[] = [];
  t.teardown(() => Promise.all(coordinators.map((c) => c.stop())));

  /** Stops the serving coordinator and starts one on its ports deploying `plan`. */
  const takeOver = async (plan: string, minWorkers = 4): Promise<ProcessHandle> => {
    const serving = coordinators.at(-1) ?? cluster.coordinator;
    await serving.stop();
    const api = new URL(cluster.apiUrl);
    const workers = new URL(cluster.workersUrl);
    const next = startProcess(
      coordinatorArgs({
        model,
        listen: `${workers.hostname}:${workers.port}`,
        api: `${api.hostname}:${api.port}`,
        minWorkers,
        cacheDir: join(root, 'c'),
        extra: ['--plan', plan],
      }),
      { SWARMBEE_TOKEN: cluster.token },
    );
    coordinators.push(next);
    await next.waitForEvent<CoordinatorStateEvent>(COORDINATOR_EVENTS.state, {
      match: (e) => e.to === 'ready',
      timeoutMs: 60_000,
    });
    return next;
  };

  const deployed = async (): Promise<ClusterJson> =>
    (await (await fetch(`${cluster.apiUrl}/swarmbee/cluster`)).json()) as ClusterJson;

  const checkOnce = async (name: string) => {
    const once = await complete(cluster.apiUrl, {
      prompt: 'Once upon a time',
      steps: 64,
      temperature: 0,
      echo: true,
    });
    t.equal(once.status, 200, `${name}: answered`);
    t.same(once.json.choices[0].token_ids, unsplit.token_ids, `${name}: the unsplit model's ids`);
    t.equal(`${once.json.choices[0].text}\n`, refOnce, `${name}: run.c's text`);
  };

  t.same(
    (await deployed()).stages.map((s) => s.members),
    [[W[0], W[1]]],
    'TP2: one stage on a group of two',
  );
  await checkOnce('TP2');
  const none = await greedy(['--url', cluster.apiUrl], 200);
  t.equal(none.stdout, refNone, "TP2: no prompt, 200 steps, streamed: run.c's text");

  await takeOver(tp3);
  t.same(
    (await deployed()).stages.map((s) => s.members),
    [[W[0], W[1], W[2]]],
    'TP3 2:1:1',
  );
  await checkOnce('TP3 2:1:1, ring');

  const pp = await takeOver(pptp);
  t.same(
    (await deployed()).stages.map((s) => s.members ?? [s.worker]),
    [[W[3]], [W[0], W[1]]],
    'PP+TP: one worker, then a group of two',
  );
  await checkOnce('PP+TP');

  /**
   * Kills worker `victim` once the first token of a stream has arrived; `survivor`, a member
   * of the same group, sees it go (sums failing with GROUP_MEMBER_LOST) and leaves the group
   * when the coordinator re-plans without the victim. The stream and the next request
   * complete with run.c's text.
   */
  const failover = async (
    name: string,
    coordinator: ProcessHandle,
    stageIndex: number,
    victim: number,
    survivor: number,
  ) => {
    const watcher = cluster.workers[survivor]!;
    const since = watcher.mark();
    const sinceCoordinator = coordinator.mark();
    const response = await fetch(`${cluster.apiUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'Once upon a time',
        steps: 64,
        temperature: 0,
        echo: true,
        stream: true,
      }),
    });
    t.equal(response.status, 200, `${name}: the stream began`);
    let raw = '';
    let killedAt = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      raw += Buffer.from(chunk).toString();
      // The echoed prompt, then the first generated token.
      if (!killedAt && raw.split('data: {').length > 2) {
        killedAt = raw.length;
        cluster.workers[victim]!.child.kill('SIGKILL');
      }
    }
    t.ok(raw.slice(killedAt).includes('data: {'), `${name}: tokens streamed after the kill`);
    const lost = await watcher.waitForEvent<{ code: string; stage: number }>(
      GROUP_EVENTS.memberLost,
      { since },
    );
    t.match(
      lost,
      { code: 'SWARMBEE_ERR_GROUP_MEMBER_LOST', stage: stageIndex },
      `${name}: ${W[survivor]} saw ${W[victim]} go`,
    );
    const parsed = raw
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)) as { error?: unknown; choices?: { text: string }[] });
    t.notOk(
      parsed.find((e) => e.error),
      `${name}: the stream carried no error`,
    );
    t.equal(
      `${parsed.map((e) => e.choices?.[0]?.text ?? '').join('')}\n`,
      refOnce,
      `${name}: the stream completed with run.c's text across the failover`,
    );
    const replan = await coordinator.waitForEvent<{ reason: string }>(COORDINATOR_EVENTS.replayed, {
      since: sinceCoordinator,
    });
    t.match(
      replan.reason,
      new RegExp(`${W[victim]}|GROUP_MEMBER_LOST|link to stage ${stageIndex} closed`),
      `${name}: re-planned`,
    );
    const after = await deployed();
    t.notOk(
      after.stages.some((s) => s.worker === W[victim] || s.members?.includes(W[victim]!)),
      `${name}: the new plan leaves ${W[victim]} out`,
    );
    // The survivor's member left its group when its stage was replaced: nothing held.
    await watcher.waitForEvent(GROUP_EVENTS.left, { since });
    const next = await complete(cluster.apiUrl, {
      prompt: 'Once upon a time',
      steps: 64,
      temperature: 0,
      echo: true,
    });
    t.equal(`${next.json.choices[0].text}\n`, refOnce, `${name}: the next request is served too`);
  };

  await failover('member lost', pp, 1, 1, 0);
  // Then the leader of a TP2 group on the three workers left.
  const lead = await takeOver(await planFile('lead', [stage(0, 0, 5, [W[2]!, W[0]!])]), 3);
  await failover('leader lost', lead, 0, 2, 0);
});
