import t, { type Test } from 'tap';
import { importStories260k } from './helpers/cli.js';
import { type Cluster, complete, startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const PROMPTS = ['Once upon a time', 'The cat sat', 'Lily and Tom went', 'One day, a big dog'];
const MAX_TOKENS = 120;
/** Short heartbeats so a stalled worker is found within the test's patience. */
const HEARTBEAT_TIMEOUT_MS = 1500;

/** Streams a completion, calling `onTokens` with the running token count. */
async function streamCompletion(
  apiUrl: string,
  prompt: string,
  onTokens: (n: number) => void,
): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: MAX_TOKENS, temperature: 0, stream: true }),
  });
  let text = '';
  let events = 0;
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += Buffer.from(chunk).toString();
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer.slice(6, end);
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') continue;
      const event = JSON.parse(data) as {
        choices?: { text: string }[];
        error?: { code: string; message: string };
      };
      if (event.error) throw new Error(`${event.error.code}: ${event.error.message}`);
      text += event.choices?.[0]?.text ?? '';
      onTokens(++events);
    }
  }
  return text;
}

async function uninterrupted(cluster: Cluster): Promise<string[]> {
  const results = await Promise.all(
    PROMPTS.map((prompt) =>
      complete(cluster.apiUrl, { prompt, max_tokens: MAX_TOKENS, temperature: 0 }),
    ),
  );
  return results.map((r) => r.json.choices[0].text);
}

async function startSlowCluster(root: string, model: string): Promise<Cluster> {
  // Slowed workers make the generation last long enough to lose a worker in the middle of it.
  return startCluster({
    model,
    workers: 3,
    root,
    coordinatorArgs: ['--planner', 'even', '--heartbeat-timeout-ms', String(HEARTBEAT_TIMEOUT_MS)],
    workerArgs: ['--speed-factor', '0.1', '--heartbeat-timeout-ms', String(HEARTBEAT_TIMEOUT_MS)],
  });
}

async function failDuring(
  t: Test,
  cluster: Cluster,
  fail: () => void,
  expected: string[],
): Promise<void> {
  let failed = false;
  const counts = PROMPTS.map(() => 0);
  const streams = PROMPTS.map((prompt, i) =>
    streamCompletion(cluster.apiUrl, prompt, (n) => {
      counts[i] = n;
      if (!failed && counts.every((c) => c >= 10)) {
        failed = true;
        fail();
      }
    }),
  );
  const texts = await Promise.all(streams);
  t.ok(failed, 'the failure happened while all four streams were generating');
  texts.forEach((text, i) => {
    t.equal(text, expected[i], `stream "${PROMPTS[i]}" completes with the uninterrupted text`);
  });
}

t.test(
  'kill -9 one of three workers mid-generation of 4 streams: all complete unchanged',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startSlowCluster(root, model);
    t.teardown(() => cluster.stop());
    // Batching never changes tokens, so the four baselines may run together.
    const expected = await uninterrupted(cluster);
    const victim = cluster.workers[1]!;
    await failDuring(t, cluster, () => victim.child.kill('SIGKILL'), expected);
    await cluster.coordinator.waitFor(/recovered in \d+ ms, replaying 4 sequence/);
    const health = (await (await fetch(`${cluster.apiUrl}/healthz`)).json()) as {
      stages: { worker: string }[];
    };
    t.notOk(
      health.stages.some((s) => s.worker === 'worker-1'),
      'the new plan runs on the workers that remain',
    );
  },
);

t.test(
  'SIGSTOP a worker mid-generation: the stall is detected and routed around the same way',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startSlowCluster(root, model);
    t.teardown(async () => {
      cluster.workers[2]?.child.kill('SIGCONT');
      await cluster.stop();
    });
    // Batching never changes tokens, so the four baselines may run together.
    const expected = await uninterrupted(cluster);
    const stalled = cluster.workers[2]!;
    const started = Date.now();
    await failDuring(t, cluster, () => stalled.child.kill('SIGSTOP'), expected);
    const [, ms] = await cluster.coordinator.waitFor(/recovered in (\d+) ms/);
    t.ok(Date.now() - started < 60_000, `recovered (${ms} ms after detection)`);
    t.match(
      cluster.coordinator.log(),
      /worker worker-2 left/,
      'the stalled worker was declared lost',
    );
  },
);

t.test('with no worker left, every waiting request fails at once with a coded error', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const cluster = await startCluster({
    model,
    workers: 1,
    root,
    coordinatorArgs: ['--planner', 'even'],
    workerArgs: ['--speed-factor', '0.05'],
  });
  t.teardown(() => cluster.stop());
  const pending = complete(cluster.apiUrl, {
    prompt: 'Once upon a time',
    max_tokens: MAX_TOKENS,
    temperature: 0,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  cluster.workers[0]!.child.kill('SIGKILL');
  const result = await pending;
  t.equal(result.status, 503);
  t.equal(result.json.error.code, 'SWARMBEE_ERR_CLUSTER_UNAVAILABLE');
  t.match(result.json.error.message, /no worker is left/);
});
