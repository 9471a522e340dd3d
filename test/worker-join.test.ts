/**
 * Joining, on real processes: a second worker under a connected worker's name is refused
 * with a coded error and exits 1 (naming the conflict), while a restarted worker whose old
 * connection has gone silent takes its name over; the worker logs the id the coordinator
 * gives it; a stage's sequence limit below the coordinator's makes requests wait in the
 * coordinator's queue instead of failing mid-stream; and a restarted coordinator with the
 * same workers deploys the DP plan it had, without profiling and without sending a shard.
 */
import { join } from 'node:path';
import { COORDINATOR_EVENTS, type CoordinatorStateEvent } from '@swarmbee/coordinator';
import { type RegisteredEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t from 'tap';
import { importStories260k } from './helpers/cli.js';
import { complete, startCluster, startProcess } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

interface ClusterJson {
  state: string;
  workers: string[];
  stages: { worker: string; layerStart: number; layerEnd: number; transferredBytes: number }[];
  recoveries: unknown[];
}

async function cluster(apiUrl: string): Promise<ClusterJson> {
  return (await (await fetch(`${apiUrl}/swarmbee/cluster`)).json()) as ClusterJson;
}

/** The cluster state once `ready` holds, looked at every 25 ms for at most `timeoutMs`. */
async function until(
  apiUrl: string,
  ready: (c: ClusterJson) => boolean,
  timeoutMs = 60_000,
): Promise<ClusterJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await cluster(apiUrl).catch(() => undefined);
    if (seen && ready(seen)) return seen;
    if (Date.now() > deadline)
      throw new Error(`not within ${timeoutMs} ms: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

t.test('a second worker with a connected worker name exits 1 with WORKER_NAME_TAKEN', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const c = await startCluster({ model, workers: 1, root });
  t.teardown(() => c.stop());
  const first = c.workers[0]!;
  t.match(first.log(), /registered with the coordinator as worker-0\b/, 'the worker logs its id');
  t.match(c.coordinator.log(), /worker worker-0 joined/, 'the coordinator logs the same id');
  const second = c.startWorker('worker-0', join(root, 'w-dup'));
  const code = await new Promise<number | null>((resolve) => second.child.once('exit', resolve));
  t.equal(code, 1, 'the duplicate exits 1 rather than retrying forever');
  t.match(
    second.log(),
    /SWARMBEE_ERR_WORKER_NAME_TAKEN: a worker named worker-0 is already connected/,
  );
  t.match(second.log(), /another --name/);
  const served = await complete(c.apiUrl, {
    prompt: 'Once upon a time',
    max_tokens: 8,
    temperature: 0,
  });
  t.equal(served.status, 200, 'the first worker still serves');
  t.equal(first.child.exitCode, null);
});

t.test('a restarted worker takes its name from a silent old connection', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  // A long heartbeat: the old connection has not timed out when the new process joins.
  const slow = ['--heartbeat-timeout-ms', '30000'];
  const c = await startCluster({
    model,
    workers: 1,
    root,
    coordinatorArgs: slow,
    workerArgs: slow,
  });
  const old = c.workers[0]!;
  t.teardown(async () => {
    old.child.kill('SIGCONT');
    await c.stop();
  });
  old.child.kill('SIGSTOP');
  const fresh = c.startWorker('worker-0', join(root, 'w-0'));
  const since = c.coordinator.mark();
  await fresh.waitForEvent<RegisteredEvent>(WORKER_EVENTS.registered, {
    match: (e) => e.workerId === 'worker-0',
    timeoutMs: 60_000,
  });
  t.match(
    c.coordinator.log(),
    /worker worker-0 stopped answering; its name goes to the new connection/,
  );
  await c.coordinator.waitForEvent<CoordinatorStateEvent>(COORDINATOR_EVENTS.state, {
    match: (e) => e.to === 'ready',
    since,
    timeoutMs: 60_000,
  });
  const served = await complete(c.apiUrl, {
    prompt: 'Once upon a time',
    max_tokens: 8,
    temperature: 0,
  });
  t.equal(served.status, 200, 'the restarted worker serves');
});

t.test(
  'requests beyond a worker sequence limit wait in the coordinator queue, then stream whole',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const c = await startCluster({
      model,
      workers: 1,
      root,
      workerArgs: ['--max-sequences', '2', '--speed-factor', '0.5'],
    });
    t.teardown(() => c.stop());
    const prompts = ['Once upon a time', 'The cat', 'Lily and Tom', 'A big dog', 'Tim', 'The sun'];
    const body = (prompt: string) => ({ prompt, max_tokens: 40, temperature: 0 });
    const alone: string[] = [];
    for (const prompt of prompts)
      alone.push((await complete(c.apiUrl, body(prompt))).json.choices[0].text);
    const windows: [number, number][] = [];
    const texts = await Promise.all(
      prompts.map(async (prompt) => {
        const response = await fetch(`${c.apiUrl}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...body(prompt), stream: true }),
        });
        t.equal(response.status, 200);
        let raw = '';
        let first = 0;
        let last = 0;
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          raw += Buffer.from(chunk).toString();
          last = performance.now();
          first ||= last;
        }
        windows.push([first, last]);
        const events = raw.split('\n\n').filter((e) => e.startsWith('data: {'));
        const parsed = events.map(
          (e) => JSON.parse(e.slice(6)) as { error?: unknown; choices?: { text: string }[] },
        );
        t.notOk(
          parsed.some((e) => e.error),
          `"${prompt}" streamed no error`,
        );
        return parsed.map((e) => e.choices?.[0]?.text ?? '').join('');
      }),
    );
    texts.forEach((text, i) => {
      t.equal(text, alone[i], `"${prompts[i]}" equals its run alone`);
    });
    // Streams only produce tokens while their sequence runs: at most 2 ever overlapped.
    const overlap = Math.max(
      ...windows.map(([start]) => windows.filter(([s, e]) => s <= start && start <= e).length),
    );
    t.ok(overlap <= 2, `at most 2 streams ran at once (${overlap})`);
  },
);

t.test(
  'a restarted coordinator gives the same workers the same DP plan, without profiling or sending shards',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const c = await startCluster({
      model,
      workers: 2,
      root,
      coordinatorArgs: ['--planner', 'dp', '--objective', 'latency'],
    });
    t.teardown(() => c.stop());
    const before = await cluster(c.apiUrl);
    t.match(c.coordinator.log(), /profiled worker-0/, 'the first start profiled the workers');
    const plan = (s: ClusterJson) =>
      s.stages.map((x) => `${x.worker}[${x.layerStart},${x.layerEnd})`);
    const api = new URL(c.apiUrl);
    const workers = new URL(c.workersUrl);
    c.coordinator.child.kill('SIGKILL');
    await new Promise((resolve) => c.coordinator.child.once('exit', resolve));
    const restarted = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        `${workers.hostname}:${workers.port}`,
        '--api',
        `${api.hostname}:${api.port}`,
        '--min-workers',
        '2',
        '--threads',
        '1',
        '--cache-dir',
        join(root, 'c'),
        '--planner',
        'dp',
        '--objective',
        'latency',
      ],
      { SWARMBEE_TOKEN: c.token },
    );
    t.teardown(() => restarted.stop());
    const after = await until(c.apiUrl, (s) => s.state === 'ready');
    t.same(plan(after), plan(before), 'the same plan');
    t.equal(
      after.stages.reduce((n, s) => n + s.transferredBytes, 0),
      0,
      'no shard was sent',
    );
    t.notMatch(restarted.log(), /profiled/, `nothing was profiled again:\n${restarted.log()}`);
    const served = await complete(c.apiUrl, {
      prompt: 'Once upon a time',
      max_tokens: 8,
      temperature: 0,
    });
    t.equal(served.status, 200);
  },
);
