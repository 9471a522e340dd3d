/**
 * Nothing user-sized runs on the event loop that serves others: while megabyte prompts
 * (text, token ids, chat) are refused — or, with the character limit raised, tokenized
 * and then refused — four other streams keep receiving tokens through the real HTTP API
 * with no gap over 100 ms, and the event loop is never held up that long.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { type LocalApi, startLocalApi } from './helpers/local-api.js';

const MAX_GAP_MS = 100;
const STREAMS = 4;
const BODY_LIMIT_BYTES = 1024 * 1024;

interface StreamStats {
  tokens: number;
  /** Waits between two token events while the large requests ran. */
  gapsMs: number[];
}

/**
 * Streams a long completion, recording when each token event arrives; only gaps inside
 * [window.from, window.to] count (the first token and the queue before it do not).
 */
async function stream(api: LocalApi, seed: number, window: { from: number; to: number }) {
  const response = await fetch(`${api.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: [1],
      max_tokens: 511,
      ignore_eos: true,
      temperature: 1,
      seed,
      stream: true,
    }),
  });
  const stats: StreamStats = { tokens: 0, gapsMs: [] };
  let last = 0;
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of response.body!) {
    pending += decoder.decode(chunk, { stream: true });
    const events = pending.split('\n\n');
    pending = events.pop()!;
    const now = performance.now();
    for (const event of events) {
      if (!event.startsWith('data: {')) continue;
      const { choices } = JSON.parse(event.slice(6)) as { choices: { token_ids?: number[] }[] };
      if (!choices[0]?.token_ids?.length) continue;
      stats.tokens++;
      if (last > 0 && now > window.from && last < window.to) stats.gapsMs.push(now - last);
      last = now;
    }
  }
  return stats;
}

/** Sends each large request in turn; resolves with their statuses and codes. */
async function sendLarge(api: LocalApi, bodies: { name: string; path: string; body: string }[]) {
  const answers: { name: string; status: number; code: string; ms: number }[] = [];
  for (const { name, path, body } of bodies) {
    const started = performance.now();
    const response = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const json = (await response.json()) as { error?: { code: string } };
    answers.push({
      name,
      status: response.status,
      code: json.error?.code ?? 'none',
      ms: performance.now() - started,
    });
  }
  return answers;
}

function largeBodies() {
  const story = 'Once upon a time, there was a little cat named Tom. He liked to play. ';
  const text = (chars: number) => story.repeat(Math.ceil(chars / story.length)).slice(0, chars);
  const underLimit = BODY_LIMIT_BYTES - 64;
  return [
    {
      name: '1 MB text',
      path: '/v1/completions',
      body: JSON.stringify({ prompt: text(1_000_000) }),
    },
    {
      name: 'text just under the body limit',
      path: '/v1/completions',
      body: JSON.stringify({ prompt: text(underLimit - 14) }),
    },
    {
      name: '1 MB of token ids',
      path: '/v1/completions',
      body: JSON.stringify({ prompt: new Array(Math.floor(underLimit / 2) - 10).fill(5) }),
    },
    {
      name: '1 MB of chat messages',
      path: '/v1/chat/completions',
      body: JSON.stringify({
        messages: Array.from({ length: 20_000 }, (_, i) => ({
          role: i % 2 ? 'assistant' : 'user',
          content: text(20),
        })),
      }),
    },
  ];
}

function summary(values: number[]): { max: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    max: sorted.at(-1) ?? 0,
    p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0,
  };
}

/** The event loop's delays and the streams' token gaps over one window. */
async function window(api: LocalApi, work: () => Promise<void>) {
  const bounds = { from: Number.POSITIVE_INFINITY, to: Number.POSITIVE_INFINITY };
  const streams = Array.from({ length: STREAMS }, (_, i) => stream(api, i + 1, bounds));
  // Every stream decoding before the window opens.
  while (api.service.active < STREAMS || api.scheduler.inFlight === 0)
    await new Promise((resolve) => setImmediate(resolve));
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  bounds.from = performance.now();
  await work();
  bounds.to = performance.now();
  delay.disable();
  const stats = await Promise.all(streams);
  return {
    ms: bounds.to - bounds.from,
    delayMs: { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 },
    gapMs: summary(stats.flatMap((s) => s.gapsMs)),
    complete: stats.every((s) => s.tokens === 511),
  };
}

/**
 * Streams flow while the large requests are answered. Work the event loop does for a
 * request shows in every window that request is in; a machine too busy to schedule this
 * process shows at random. So the windows are repeated (at most three times) and judged by
 * the best, against the bound — or, on a machine whose quiet baseline is itself over a
 * fifth of the bound, against the bound above that baseline. `statistic` is what is judged:
 * the worst delay and gap, or (where a tokenizer thread computes for seconds beside the
 * streams on a small machine) the 99th percentile.
 */
async function measure(
  t: Test,
  api: LocalApi,
  expect: (name: string) => [number, string],
  statistic: 'max' | 'p99',
) {
  const bodies = largeBodies();
  // One round first: the code paths large bodies take are compiled once, whatever their size.
  await sendLarge(api, bodies);
  const quiet = await window(api, () => new Promise((resolve) => setTimeout(resolve, 1000)));
  const allowance = (baseline: number) =>
    baseline > MAX_GAP_MS / 5 ? MAX_GAP_MS + baseline : MAX_GAP_MS;
  const within = (w: Awaited<ReturnType<typeof window>>) =>
    w.delayMs[statistic] < allowance(quiet.delayMs[statistic]) &&
    w.gapMs[statistic] < allowance(quiet.gapMs[statistic]);
  const worst = (w: Awaited<ReturnType<typeof window>>) =>
    Math.max(w.delayMs[statistic], w.gapMs[statistic]);
  const ms = (v: { max: number; p99: number }) => `${v.max.toFixed(1)} (p99 ${v.p99.toFixed(1)})`;
  let best: Awaited<ReturnType<typeof window>> | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    let answers: Awaited<ReturnType<typeof sendLarge>> = [];
    const busy = await window(api, async () => {
      answers = await sendLarge(api, bodies);
    });
    for (const answer of answers) {
      const [status, code] = expect(answer.name);
      t.equal(answer.status, status, `${answer.name}: ${status} in ${answer.ms.toFixed(0)} ms`);
      t.equal(answer.code, code);
    }
    t.comment(
      `attempt ${attempt}: ${busy.ms.toFixed(0)} ms of large requests: event loop delay max ${ms(busy.delayMs)} ms, token gap max ${ms(busy.gapMs)} ms over ${STREAMS} streams; quiet baseline ${ms(quiet.delayMs)} / ${ms(quiet.gapMs)} ms`,
    );
    t.ok(busy.complete, 'every stream ran to its end');
    if (!best || worst(busy) < worst(best)) best = busy;
    if (within(best)) break;
  }
  t.ok(
    best!.delayMs[statistic] < allowance(quiet.delayMs[statistic]),
    `the event loop was not held up 100 ms (${statistic})`,
  );
  t.ok(
    best!.gapMs[statistic] < allowance(quiet.gapMs[statistic]),
    `no stream waited 100 ms for a token (${statistic})`,
  );
  t.ok(quiet.complete, 'the quiet streams ran to their end');
}

t.test('megabyte prompts are refused before tokenizing; other streams flow', async (t) => {
  const api = await startLocalApi(t);
  if (!api) return;
  await measure(
    t,
    api,
    (name) =>
      name === '1 MB of token ids'
        ? [400, 'SWARMBEE_ERR_CONTEXT_OVERFLOW']
        : [413, 'SWARMBEE_ERR_REQUEST_TOO_LARGE'],
    'max',
  );
});

// Raised, the limit lets each megabyte keep a tokenizer thread busy for a second or more:
// the loop stays free, but on two cores that thread takes CPU the streams' stages need.
t.test('with the character limit raised, they are tokenized off the loop', async (t) => {
  const api = await startLocalApi(t, { limits: { maxPromptChars: 2_000_000 } });
  if (!api) return;
  await measure(t, api, () => [400, 'SWARMBEE_ERR_CONTEXT_OVERFLOW'], 'p99');
});
