/**
 * The web console's server side: the page and its assets are served without the key and
 * carry no data; the live feed `GET /swarmbee/events` is guarded like every /swarmbee
 * route, starts with the cluster, sends metrics at most once a second, stops sampling when
 * its client goes, ends with [DONE] when the server closes, and is bounded in number.
 */
import { channel } from 'node:diagnostics_channel';
import {
  ClusterWatch,
  COORDINATOR_EVENTS,
  DEFAULT_MAX_EVENT_STREAMS,
  Metrics,
  type MetricsEvent,
  type StageMetrics,
} from '@swarmbee/coordinator';
import t from 'tap';
import { failovers } from '../src/console/cluster-events.js';
import { clusterWatchOf } from '../src/console/event-routes.js';
import { readEventStream } from './helpers/event-stream.js';
import { startLocalApi } from './helpers/local-api.js';

const KEY = 'console-key';
const authorization = `Bearer ${KEY}`;

/** Waits for `check` to hold, polling every 20 ms for at most `timeoutMs`. */
async function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

t.test('the page is served without the key, the feed and the data only with it', async (t) => {
  const api = await startLocalApi(t, { apiKey: KEY });
  if (!api) return;
  const page = await fetch(`${api.url}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/);
  const html = await page.text();
  t.match(html, /<script type="module" src="\/console\/console.js">/);
  t.notMatch(html, /ready|stories|worker/i, 'the page itself holds no cluster data');
  for (const asset of ['/console/console.js', '/console/console.css']) {
    const response = await fetch(`${api.url}${asset}`);
    t.equal(response.status, 200, asset);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.ok((await response.arrayBuffer()).byteLength > 1000, `${asset} is the built asset`);
    t.equal(response.headers.get('content-encoding'), 'gzip', `${asset} is sent gzipped`);
    const plain = await fetch(`${api.url}${asset}`, { headers: { 'accept-encoding': 'identity' } });
    t.equal(plain.headers.get('content-encoding'), null, 'and plain to a client without gzip');
    t.ok((await plain.arrayBuffer()).byteLength > 1000);
  }
  const script = await (await fetch(`${api.url}/console/console.js`)).text();
  t.notMatch(script, /https?:\/\/(?!www\.w3\.org)/, 'the script fetches nothing from elsewhere');

  const before = { ...api.calls };
  const refused = await fetch(`${api.url}/swarmbee/events`, { signal: AbortSignal.timeout(5000) });
  t.equal(refused.status, 401);
  t.equal(
    ((await refused.json()) as { error: { code: string } }).error.code,
    'SWARMBEE_ERR_UNAUTHORIZED',
  );
  t.same(api.calls, before, 'without the key the cluster was not even read');
  t.equal(clusterWatchOf(api.app)?.listeners, 0);
});

t.test(
  'the feed: cluster first, metrics at most once a second, closed by either side',
  async (t) => {
    const api = await startLocalApi(t, { apiKey: KEY });
    if (!api) return;
    const watch = clusterWatchOf(api.app)!;
    const abort = new AbortController();
    const response = await fetch(`${api.url}/swarmbee/events`, {
      headers: { authorization },
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(30_000)]),
    });
    t.equal(response.status, 200);
    t.match(response.headers.get('content-type'), /^text\/event-stream/);
    const events = readEventStream(response);
    t.match(await events.next(), { type: 'cluster', cluster: { state: 'ready' } });
    t.equal(watch.listeners, 1);

    // Generate a few tokens so that the rates have something to show.
    const completion = await fetch(`${api.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 24, temperature: 0 }),
    });
    t.equal(completion.status, 200);
    const metrics: { at: number; tokensPerS: number }[] = [];
    await events.until((event) => {
      const e = event as { type: string; at: number; tokensPerS: number };
      if (e.type === 'metrics') metrics.push(e);
      return metrics.length >= 3;
    }, 10_000);
    for (let i = 1; i < metrics.length; i++)
      t.ok(
        metrics[i]!.at - metrics[i - 1]!.at >= 900,
        `metrics ${i} came ≥ 0.9 s after the one before`,
      );
    t.ok(
      metrics.some((m) => m.tokensPerS > 0),
      'the generated tokens show in tokens/s',
    );

    // The client goes away: the server stops following the cluster for it.
    abort.abort();
    t.ok(await eventually(() => watch.listeners === 0), 'the stream was closed on the server');

    // A stream still open when the server closes ends with [DONE].
    const second = await fetch(`${api.url}/swarmbee/events`, {
      headers: { authorization },
      signal: AbortSignal.timeout(30_000),
    });
    const tail = readEventStream(second);
    await tail.next();
    const closing = api.app.close();
    t.same(
      await tail.until((event) => event === '[DONE]', 10_000).then((seen) => seen.at(-1)),
      '[DONE]',
    );
    t.equal(await tail.next(), undefined, 'and the stream ends');
    await closing;
    t.equal(watch.listeners, 0);
  },
);

t.test(
  `at most ${DEFAULT_MAX_EVENT_STREAMS} streams at once; one more is a QUEUE_FULL`,
  async (t) => {
    const api = await startLocalApi(t, { apiKey: KEY });
    if (!api) return;
    const abort = new AbortController();
    t.teardown(() => abort.abort());
    const open = await Promise.all(
      Array.from({ length: DEFAULT_MAX_EVENT_STREAMS }, () =>
        fetch(`${api.url}/swarmbee/events`, { headers: { authorization }, signal: abort.signal }),
      ),
    );
    t.ok(open.every((r) => r.status === 200));
    t.ok(await eventually(() => clusterWatchOf(api.app)?.listeners === DEFAULT_MAX_EVENT_STREAMS));
    const more = await fetch(`${api.url}/swarmbee/events`, {
      headers: { authorization },
      signal: AbortSignal.timeout(5000),
    });
    t.equal(more.status, 429);
    t.match(await more.json(), { error: { code: 'SWARMBEE_ERR_QUEUE_FULL', retryable: true } });
    abort.abort();
    t.ok(await eventually(() => clusterWatchOf(api.app)?.listeners === 0));
  },
);

t.test('failovers are read from the change of two cluster descriptions', async (t) => {
  const before = {
    state: 'ready',
    workers: ['a', 'b', 'c'],
    plan: { stages: [{ device: 'a' }, { device: 'b' }] },
    recoveries: [],
  };
  t.same(failovers(before, before), []);
  const lost = { ...before, state: 'recovering', workers: ['a', 'c'] };
  t.same(
    failovers(before, lost).map((e) => [e.kind, e.message]),
    [
      ['worker-lost', 'worker b was lost (it ran a stage)'],
      ['state', 'cluster ready → recovering'],
    ],
  );
  const replanned = {
    ...lost,
    state: 'ready',
    workers: ['a', 'c', 'd'],
    recoveries: [
      { reason: 'worker b was lost', at: 1, workers: ['a', 'c'], durationMs: 812.4, replayed: 3 },
    ],
  };
  t.same(
    failovers(lost, replanned).map((e) => [e.kind, e.message]),
    [
      ['worker-joined', 'worker d joined'],
      ['state', 'cluster recovering → ready'],
      ['replanned', 're-planned onto a, c in 812 ms (worker b was lost); replayed 3 sequences'],
    ],
  );
});

t.test('a watch samples only while someone listens, and never faster than 1 s', async (t) => {
  let reads = 0;
  let state = 'ready';
  const recoveries: Record<string, unknown>[] = [];
  const metrics = new Metrics({
    queued: () => 0,
    active: () => 0,
    inFlight: () => 0,
    stages: () => [],
  });
  const watch = new ClusterWatch(
    {
      cluster: () => {
        reads++;
        return { state, workers: ['a'], recoveries };
      },
      metrics,
    },
    10,
  );
  const seen: { type: string; at: number; kind?: string }[] = [];
  const stop = watch.subscribe((event) => seen.push(event));
  t.equal(seen[0]?.type, 'cluster', 'a listener hears the cluster at once');
  state = 'recovering';
  t.ok(await eventually(() => seen.some((e) => e.kind === 'state'), 3000), 'a change is told');
  const metricsAt = () => seen.filter((e) => e.type === 'metrics').map((e) => e.at);
  t.ok(await eventually(() => metricsAt().length >= 2, 3000));
  const [first, second] = metricsAt();
  t.ok(second! - first! >= 990, `an interval of 10 ms is raised to 1 s (${second! - first!} ms)`);
  // The coordinator's description shares its recoveries array and pushes onto it.
  recoveries.push({ reason: 'asked', at: 1, workers: ['a'], durationMs: 5, replayed: 0 });
  t.ok(
    await eventually(() => seen.some((e) => e.kind === 'replanned'), 3000),
    'a re-plan pushed onto a shared array is told',
  );
  stop();
  const readsAfterStop = reads;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  t.equal(reads, readsAfterStop, 'nobody listening: nothing is sampled');
});

t.test('stage rates: forward ms, utilisation and bytes/s from the counters', async (t) => {
  let stages: StageMetrics[] = [];
  const metrics = new Metrics({
    queued: () => 0,
    active: () => 0,
    inFlight: () => 0,
    stages: () => stages,
  });
  const watch = new ClusterWatch({ cluster: () => ({ state: 'ready' }), metrics });
  const seen: MetricsEvent[] = [];
  const stop = watch.subscribe((event) => {
    if (event.type === 'metrics') seen.push(event);
  });
  t.teardown(stop);
  t.ok(await eventually(() => seen.length >= 1, 3000));
  // A stage that appears with work already counted: its counters started at zero.
  stages = [
    {
      stage: 0,
      device: 'a',
      forwards: 10,
      forwardMsTotal: 500,
      busyMsTotal: 500,
      queueDepth: 2,
      bytesSent: 4000,
      idleShare: 0.5,
    },
  ];
  t.ok(await eventually(() => (seen.at(-1)?.stages.length ?? 0) > 0, 3000));
  const [stage] = seen.at(-1)!.stages;
  t.equal(stage?.forwardMs, 50, '500 ms over 10 forwards');
  t.equal(stage?.queueDepth, 2);
  const utilisation = stage?.utilisation ?? 0;
  t.ok(utilisation > 0 && utilisation <= 1, `utilisation ${utilisation}`);
  t.ok((stage?.bytesPerS ?? 0) > 0, `bytes/s ${stage?.bytesPerS}`);
});

t.test(
  'after a re-plan every stage of the new plan has a row, measured from its new counters',
  async (t) => {
    const counters = (stage: number, device: string, forwards: number): StageMetrics => ({
      stage,
      device,
      forwards,
      forwardMsTotal: forwards * 10,
      busyMsTotal: forwards * 10,
      queueDepth: 0,
      bytesSent: forwards * 100,
      idleShare: 0.5,
    });
    let plan = [
      { index: 0, device: 'a' },
      { index: 1, device: 'b' },
    ];
    let stages = [counters(0, 'a', 1000), counters(1, 'b', 1000)];
    const metrics = new Metrics({
      queued: () => 0,
      active: () => 0,
      inFlight: () => 0,
      stages: () => stages,
    });
    const watch = new ClusterWatch({
      cluster: () => ({ state: 'ready', plan: { stages: plan } }),
      metrics,
    });
    const seen: MetricsEvent[] = [];
    const stop = watch.subscribe((event) => {
      if (event.type === 'metrics') seen.push(event);
    });
    t.teardown(stop);
    const rows = () => (seen.at(-1)?.stages ?? []).map((s) => `${s.stage}/${s.device}`);
    t.ok(await eventually(() => rows().join() === '0/a,1/b', 3000), 'the plan as it was');

    // Worker b is lost; the new plan runs on a and c. The coordinator has not polled the
    // new stages yet: its counters are still the old deployment's (or none, mid-recovery).
    plan = [
      { index: 0, device: 'a' },
      { index: 1, device: 'c' },
    ];
    stages = [];
    t.ok(
      await eventually(() => rows().join() === '0/a,1/c', 3000),
      `the new plan's stages: ${rows()}`,
    );
    t.same(
      seen.at(-1)!.stages.map((s) => s.forwards),
      [null, null],
      'not reported yet: shown as unknown, not as idle',
    );

    // The new stages report: stage 0 on `a` was loaded again, so its counters restarted
    // (below the old deployment's), and it has run 20 forwards since.
    stages = [counters(0, 'a', 20), counters(1, 'c', 20)];
    t.ok(await eventually(() => seen.at(-1)!.stages.every((s) => s.forwards === 20), 3000));
    for (const stage of seen.at(-1)!.stages) {
      t.equal(stage.forwardMs, 10, `stage ${stage.stage}: 200 ms over 20 forwards since loading`);
      t.ok((stage.utilisation ?? 0) > 0, `stage ${stage.stage} is busy (${stage.utilisation})`);
      t.ok((stage.bytesPerS ?? 0) > 0, `stage ${stage.stage} sends (${stage.bytesPerS} B/s)`);
    }
  },
);

t.test('a lifecycle event makes the watch read the cluster at once', async (t) => {
  let state = 'ready';
  const metrics = new Metrics({
    queued: () => 0,
    active: () => 0,
    inFlight: () => 0,
    stages: () => [],
  });
  const watch = new ClusterWatch({ cluster: () => ({ state, workers: ['a'] }), metrics });
  const seen: { type: string; at: number; kind?: string }[] = [];
  const stop = watch.subscribe((event) => seen.push(event));
  t.teardown(stop);
  // Past the first tick, so that the next one is a second away.
  await new Promise((resolve) => setTimeout(resolve, 100));
  state = 'recovering';
  const published = Date.now();
  channel(COORDINATOR_EVENTS.state).publish({ from: 'ready', to: 'recovering' });
  t.ok(await eventually(() => seen.some((e) => e.kind === 'state'), 3000));
  const told = seen.find((e) => e.kind === 'state')!;
  t.ok(
    told.at - published < 500,
    `told ${told.at - published} ms after the event, not at the next tick`,
  );
  stop();
  t.notOk(channel(COORDINATOR_EVENTS.state).hasSubscribers, 'nobody listening: unsubscribed');
});

t.test(
  'a worker lost after the coordinator dropped its plan is told as one that ran a stage',
  async (t) => {
    let cluster: Record<string, unknown> = {
      state: 'ready',
      workers: ['a', 'b'],
      plan: {
        stages: [
          { index: 0, device: 'a' },
          { index: 1, device: 'b' },
        ],
      },
    };
    const metrics = new Metrics({
      queued: () => 0,
      active: () => 0,
      inFlight: () => 0,
      stages: () => [],
    });
    const watch = new ClusterWatch({ cluster: () => cluster, metrics });
    const told: string[] = [];
    const stop = watch.subscribe((event) => {
      if (event.type === 'failover') told.push(event.message);
    });
    t.teardown(stop);
    const publish = async () => {
      channel(COORDINATOR_EVENTS.state).publish({ from: 'ready', to: 'recovering' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    };
    // The deployment is torn down first (no plan), then the worker's link is seen closed.
    cluster = { state: 'recovering', workers: ['a', 'b'] };
    await publish();
    cluster = { state: 'recovering', workers: ['a'] };
    await publish();
    t.same(told, ['cluster ready → recovering', 'worker b was lost (it ran a stage)']);
  },
);
