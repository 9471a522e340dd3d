/**
 * The web console in a real browser (headless Chromium) against a real cluster on
 * loopback — a coordinator and three worker processes serving stories260K, with an API
 * key: the page asks for the key and then shows the three workers and the plan; a chat
 * reply streams in and equals the API's own answer; a `kill -9` of a worker shows up as
 * lost and then as re-planned; a re-plan from the page changes the plan. Every wait is
 * bounded. With SWARMBEE_CONSOLE_SCREENSHOTS=<dir>, each view is saved there as a PNG.
 */
import { join } from 'node:path';
import { type BenchResult, barChart, check, machineInfo, writeReport } from '@swarmbee/bench';
import { summarize } from '@swarmbee/optimize';
import type { Page } from 'playwright-core';
import t from 'tap';
import { launchChromium } from './helpers/browser.js';
import { importStories260k } from './helpers/cli.js';
import { startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const KEY = 'console-browser-key';
/** Longest wait for anything the page should show, ms. */
const SHOW_TIMEOUT_MS = 30_000;
/** Longest wait for the cluster to lose a worker and re-plan, ms. */
const FAILOVER_TIMEOUT_MS = 60_000;
/** Longest wait for a re-plan that profiles the workers first (slow on a busy machine), ms. */
const REPLAN_TIMEOUT_MS = 180_000;
const SCREENSHOTS = process.env.SWARMBEE_CONSOLE_SCREENSHOTS;
/** A phone's viewport width, CSS px. */
const PHONE_WIDTH_PX = 390;

// A cluster of four processes and a browser, a failover and a profiling re-plan take
// longer than tap's 300 s on a busy 2-core machine; each wait inside is bounded.
t.setTimeout(600_000);

async function screenshot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS)
    await page.screenshot({ path: join(SCREENSHOTS, `console-${name}.png`), fullPage: true });
}

/** Waits until the texts of the elements `selector` matches pass `check`, for at most `timeoutMs`. */
async function texts(
  page: Page,
  selector: string,
  check: (texts: string[]) => boolean,
  timeoutMs = SHOW_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    seen = await page.$$eval(selector, (elements) => elements.map((e) => e.textContent ?? ''));
    if (check(seen)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${selector} still shows ${JSON.stringify(seen)} after ${timeoutMs} ms`);
}

/** A benchmark run written by the bench package's own report writer. */
async function benchRun(dir: string, tokensPerS: number[]): Promise<string[]> {
  const summary = summarize(tokensPerS);
  const result: BenchResult = {
    suite: 'console-test',
    title: `decode at ${summary.median.toFixed(0)} tok/s`,
    command: 'swarmbee bench --suite console-test',
    startedAt: new Date().toISOString(),
    durationMs: 1234,
    machine: machineInfo(),
    options: {},
    notes: ['written by the console browser test'],
    metrics: { decode_tokens_per_s: { unit: 'tok/s', summary } },
    tables: [{ title: 'Decode', head: ['run', 'tok/s'], rows: tokensPerS.map((v, i) => [i, v]) }],
    checks: [check('decode floor', summary.median, 1, 'median tok/s')],
    charts: [
      {
        file: 'decode.svg',
        title: 'Decode speed',
        svg: barChart({
          title: 'Decode speed',
          unit: 'tok/s',
          bars: tokensPerS.map((value, i) => ({ label: `run ${i}`, value })),
        }),
      },
    ],
  };
  const files = await writeReport(dir, result);
  return files.filter((file) => !file.endsWith('.md'));
}

async function tab(page: Page, view: string): Promise<void> {
  await page.click(`[data-view="${view}"]`, { timeout: SHOW_TIMEOUT_MS });
}

t.test(
  'the console shows a real cluster, chats, and follows a failover and a re-plan',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const browser = await launchChromium(t);
    if (!browser) return;
    const root = t.testdir();
    const cluster = await startCluster({
      model: await importStories260k(root),
      workers: 3,
      root,
      coordinatorArgs: ['--api-key', KEY, '--bench-dir', join(root, 'bench-results')],
      // Three workers and a browser on a shared 2-core machine start slowly.
      startTimeoutMs: 120_000,
    });
    t.teardown(() => cluster.stop());
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.setDefaultTimeout(SHOW_TIMEOUT_MS);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    // The page asks for the key before it shows anything.
    await page.goto(cluster.apiUrl, { timeout: SHOW_TIMEOUT_MS });
    await page.waitForSelector('#key-dialog[open]');
    const load = (await page.evaluate(
      `(() => { const n = performance.getEntriesByType('navigation')[0];
        return { ms: n.loadEventEnd - n.startTime, bytes: performance.getEntriesByType('resource')
          .reduce((sum, r) => sum + r.encodedBodySize, n.encodedBodySize) }; })()`,
    )) as { ms: number; bytes: number };
    t.comment(`page loaded in ${load.ms.toFixed(0)} ms, ${load.bytes} bytes`);
    t.equal(
      await page.locator('[data-testid="worker-state"]').count(),
      0,
      'no cluster shown without the key',
    );
    await page.fill('[data-testid="key-input"]', KEY);
    await page.click('[data-testid="key-submit"]');

    // Cluster: three workers, ready.
    await texts(
      page,
      '[data-testid="worker-state"]',
      (states) => states.length === 3 && states.every((state) => state === 'ready'),
    );
    t.equal(await page.textContent('[data-testid="cluster-state"]'), 'ready');
    t.same(
      await page.$$eval('[data-testid="workers"] tbody tr td:nth-child(2)', (cells) =>
        cells.map((c) => c.textContent).sort(),
      ),
      ['worker-0', 'worker-1', 'worker-2'],
      'the three workers are listed',
    );
    t.same(
      await page.$$eval('[data-testid="worker-ep"]', (cells) => cells.map((c) => c.textContent)),
      ['cpu', 'cpu', 'cpu'],
      'each worker shows the execution provider it registered with',
    );
    await screenshot(page, 'cluster');

    // Plan: the layers split over three devices.
    await tab(page, 'plan');
    await page.waitForSelector('[data-testid="layer-bar"] rect');
    t.equal(
      await page.locator('[data-testid="layer-bar"] rect').count(),
      3,
      'the layer bar has one part per stage',
    );
    t.match(await page.textContent('[data-testid="plan-summary"]'), /^3 stages over 5 layers/);
    await screenshot(page, 'plan');

    // Chat: a greedy reply streams in and equals the API's answer to the same request.
    await tab(page, 'chat');
    const chat = page.locator('#view-chat');
    await chat.locator('input.num').nth(0).fill('0');
    await chat.locator('input.num').nth(2).fill('24');
    await page.fill('[data-testid="chat-input"]', 'Tell me a story about a cat.');
    await page.click('[data-testid="chat-send"]');
    await page.waitForSelector('.msg[data-done="true"] [data-testid="chat-reply"]');
    const shown = await page.textContent('[data-testid="chat-reply"]');
    const stats = await page.textContent('[data-testid="chat-stats"]');
    t.match(stats, /TTFT \d+ ms · 24 tokens/, 'the reply shows its time to first token and tokens');
    const api = await fetch(`${cluster.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'Tell me a story about a cat.' }],
        temperature: 0,
        top_p: 0.95,
        max_tokens: 24,
      }),
      signal: AbortSignal.timeout(SHOW_TIMEOUT_MS),
    });
    const answer = (await api.json()) as { choices: [{ message: { content: string } }] };
    t.ok(shown && shown.length > 0, 'a reply was streamed');
    t.equal(shown, answer.choices[0].message.content, "the streamed reply is the API's text");
    await screenshot(page, 'chat');

    // Pipeline: the live series are drawn (uPlot's canvas), one row per stage.
    await tab(page, 'pipeline');
    await page.waitForSelector('[data-testid="tokens-chart"] canvas');
    await page.waitForSelector('[data-testid="utilisation-chart"] canvas');
    await texts(page, '[data-testid="stage-metrics"] tbody tr', (rows) => rows.length === 3);

    // Failover: kill -9 a worker that runs a stage; the page shows it lost, then re-planned.
    await cluster.workers[2]!.stop('SIGKILL');
    await page.waitForSelector('[data-testid="failover-list"] li.event-worker-lost', {
      timeout: FAILOVER_TIMEOUT_MS,
    });
    t.match(
      await page.textContent('[data-testid="failover-list"]'),
      /worker worker-2 was lost \(it ran a stage\)/,
    );
    t.teardown(() => {
      if (t.passing()) return;
      t.comment(`coordinator log:\n${cluster.coordinator.log().slice(-4000)}`);
    });
    await page.waitForSelector('[data-testid="failover-list"] li.event-replanned', {
      timeout: FAILOVER_TIMEOUT_MS,
    });
    t.match(
      await page.textContent('[data-testid="failover-list"] li.event-replanned'),
      /re-planned onto worker-0, worker-1/,
    );
    // The new plan's two stages are listed as soon as it is deployed, before their
    // workers' counters come in (then shown as unknown).
    await texts(page, '[data-testid="stage-metrics"] tbody tr', (rows) => rows.length === 2);
    // Work on the new plan: its stages' counters fill the table and the lanes draw it.
    const work = await fetch(`${cluster.apiUrl}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', temperature: 0, max_tokens: 64 }),
      signal: AbortSignal.timeout(SHOW_TIMEOUT_MS),
    });
    t.equal(work.status, 200, 'the new plan serves');
    await texts(page, '[data-testid="stage-metrics"] tbody td:nth-child(7)', (forwards) =>
      forwards.every((n) => Number(n) > 0),
    );
    // A batch's segment (the legend's swatches have no title).
    await page.waitForSelector('[data-testid="timeline"] rect.lane-compute title', {
      state: 'attached',
    });
    t.pass("the new plan's stages show their forward passes, and the timeline draws them");
    await screenshot(page, 'pipeline');
    await tab(page, 'cluster');
    await texts(page, '[data-testid="worker-state"]', (states) => states.includes('lost'));
    t.pass('the killed worker is shown as lost');

    // Re-plan from the page: the solo planner puts every layer on one device.
    await tab(page, 'plan');
    await texts(page, '[data-testid="layer-bar"] rect', (rects) => rects.length === 2);
    await page.selectOption('#view-plan select[name="planner"]', 'solo');
    await page.click('#view-plan form.replan button');
    await texts(
      page,
      '[data-testid="replan-status"]',
      ([status]) => status?.startsWith('deployed') === true,
      REPLAN_TIMEOUT_MS,
    );
    await texts(page, '[data-testid="layer-bar"] rect', (rects) => rects.length === 1);
    t.match(
      await page.textContent('[data-testid="plan-summary"]'),
      /^1 stage over 5 layers · planner solo/,
    );
    await screenshot(page, 'replanned');

    // Benchmarks: two runs written by the bench package, read back and compared.
    const runA = await benchRun(join(root, 'bench-results', 'run-a'), [10, 12, 11]);
    const runB = await benchRun(join(root, 'bench-results', 'run-b'), [20, 22, 21]);
    await tab(page, 'bench');
    await page.setInputFiles('[data-testid="bench-file-1"]', runA);
    await page.setInputFiles('[data-testid="bench-file-2"]', runB);
    await texts(page, '[data-testid="bench-report"] h3', (titles) => titles.length === 2);
    t.same(
      await page.$$eval('[data-testid="bench-compare"] tbody td', (cells) =>
        cells.map((c) => c.textContent),
      ),
      ['decode_tokens_per_s', 'tok/s', '11', '21', '1.909'],
      'the shared metric side by side, with its ratio',
    );
    // Each run draws its chart from the SVG file picked with it (evaluated in the page).
    await page.waitForFunction(
      `[...document.querySelectorAll('img[data-testid="bench-chart"]')]
        .filter((image) => image.complete && image.naturalWidth > 0).length === 2`,
    );
    t.pass('both runs draw their chart from the SVG files picked with them');
    await screenshot(page, 'bench');
    // The coordinator's own runs (--bench-dir): run-a compared with itself, its chart fetched.
    await texts(page, '[data-testid="bench-recent"] option', (runs) => runs.length === 2);
    await page.selectOption('[data-testid="bench-recent"] select', 'run-a');
    await page.click('[data-testid="bench-recent"] button:has-text("Compare with")');
    await texts(page, '[data-testid="bench-compare"] tbody td', (cells) =>
      ['decode_tokens_per_s', 'tok/s', '11', '11', '1'].every((cell, i) => cells[i] === cell),
    );
    await page.waitForFunction(
      `[...document.querySelectorAll('img[data-testid="bench-chart"]')]
        .filter((image) => image.complete && image.naturalWidth > 0).length === 2`,
    );
    t.pass("a run from the coordinator's list is compared, its chart fetched from it");

    // On a phone's width the page does not scroll sideways (wide tables scroll in place).
    await page.setViewportSize({ width: PHONE_WIDTH_PX, height: 800 });
    await tab(page, 'pipeline');
    await page.waitForSelector('[data-testid="tokens-chart"] canvas');
    const pageWidth = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    t.ok(pageWidth <= PHONE_WIDTH_PX, `the page fits ${PHONE_WIDTH_PX} px (${pageWidth} px)`);
    await screenshot(page, 'phone');
    t.same(pageErrors, [], 'the page threw nothing');
  },
);
