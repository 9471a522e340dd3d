/**
 * Benchmark reports end to end: a real (quick) soak run writes its JSON,
 * Markdown and SVG, and every chart the benchmarks draw renders in a real
 * browser (headless Chromium) as well-formed SVG with nothing drawn outside
 * the canvas and no two labels on top of each other.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchResult, barChart, lineChart, timelineChart } from '@swarmbee/bench';
import t from 'tap';
import { runCli } from '../../../test/helpers/cli.js';
import { haveTool } from '../../../test/helpers/deploy.js';

interface Rendered {
  name: string;
  parseError: string | null;
  width: number;
  height: number;
  elements: number;
  outside: string[];
  overlapping: string[];
}

/** Renders each SVG in headless Chromium and reports what the layout came out as. */
function renderInChromium(dir: string, charts: Map<string, string>): Rendered[] {
  const page = join(dir, 'charts.html');
  writeFileSync(
    page,
    `<!doctype html><html><body><pre id="result">pending</pre><script>
const charts = ${JSON.stringify(Object.fromEntries(charts))};
const results = [];
for (const [name, source] of Object.entries(charts)) {
  const doc = new DOMParser().parseFromString(source, 'image/svg+xml');
  const error = doc.querySelector('parsererror');
  if (error) { results.push({ name, parseError: error.textContent }); continue; }
  const svg = document.importNode(doc.documentElement, true);
  document.body.appendChild(svg);
  const box = svg.getBoundingClientRect();
  const outside = [];
  const labels = [];
  const drawn = svg.querySelectorAll('rect, path, circle, line, text');
  for (const el of drawn) {
    const r = el.getBoundingClientRect();
    if (r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1)
      outside.push(el.tagName + ' ' + (el.textContent || el.getAttribute('d') || '').slice(0, 40));
    if (el.tagName === 'text' && el.textContent.trim()) labels.push({ text: el.textContent, r });
  }
  const overlapping = [];
  for (let i = 0; i < labels.length; i++)
    for (let j = i + 1; j < labels.length; j++) {
      const a = labels[i].r, b = labels[j].r;
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (x > 1 && y > 1) overlapping.push(labels[i].text + ' / ' + labels[j].text);
    }
  results.push({ name, parseError: null, width: box.width, height: box.height, elements: drawn.length, outside, overlapping });
}
document.getElementById('result').textContent = JSON.stringify(results);
</script></body></html>`,
  );
  const run = spawnSync(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      `--user-data-dir=${join(dir, 'chromium-profile')}`,
      '--virtual-time-budget=5000',
      '--dump-dom',
      `file://${page}`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const match = /<pre id="result">(.*?)<\/pre>/s.exec(run.stdout ?? '');
  if (!match || match[1] === 'pending')
    throw new Error(`chromium rendered nothing (status ${run.status}): ${run.stderr}`);
  const decoded = match[1]!
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return JSON.parse(decoded) as Rendered[];
}

/** Charts shaped like the ones the suites draw, at their busiest. */
function exampleCharts(): Map<string, string> {
  const plans = ['even split', 'memory share', 'best single device', 'DP latency', 'DP throughput'];
  return new Map([
    [
      'plans-throughput.svg',
      barChart({
        title: 'Steady decode tokens/s, 16 streams',
        unit: 'tokens/s',
        bars: plans.map((label, i) => ({ label, value: 20 + i * 7.5 })),
      }),
    ],
    [
      'single-stream.svg',
      barChart({
        title: 'One stream: decode tokens/s',
        unit: 'tokens/s',
        bars: ['in-process', '1 stage(s)', '2 stage(s)'].map((label, i) => ({
          label,
          value: 70 - i * 4,
          low: 66 - i * 4,
          high: 74 - i * 4,
        })),
      }),
    ],
    [
      'throughput-vs-streams.svg',
      lineChart({
        title: 'Aggregate decode tokens/s',
        xLabel: 'concurrent streams',
        yLabel: 'tokens/s',
        series: [1, 2].map((stages) => ({
          name: `${stages} stage(s)`,
          points: [1, 4, 8, 16].map((x) => [x, 40 * stages + x * 3] as [number, number]),
        })),
      }),
    ],
    [
      'timeline.svg',
      timelineChart({
        title: 'Per-stage timeline',
        lanes: ['worker-0', 'worker-1', 'worker-2'].map((name, lane) => ({
          name,
          spans: Array.from({ length: 30 }, (_, i) => ({
            start: i * 10 + lane * 3,
            end: i * 10 + lane * 3 + 6,
            kind: i % 3 === 0 ? 'compute' : i % 3 === 1 ? 'send' : 'wait',
          })),
        })),
      }),
    ],
  ]);
}

const root = t.testdir();
const soakOut = join(root, 'soak');

t.test('a quick soak run writes JSON, Markdown and an SVG chart', async (t) => {
  const out = soakOut;
  const run = await runCli(['bench', '--suite', 'soak', '--quick', '--out', out], {
    timeoutMs: 300_000,
  });
  t.equal(run.code, 0, run.stderr.slice(-2000));
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as BenchResult;
  t.equal(result.suite, 'soak');
  const whole = result.checks.find((c) => c.name === 'requests completed whole');
  t.equal(whole?.pass, true, 'every request came back with every token it asked for');
  t.ok(
    result.checks.some((c) => c.name.startsWith('worker memory')),
    'the memory check is reported (its verdict needs the full run)',
  );
  t.match(readFileSync(join(out, 'report.md'), 'utf8'), /\| worker \| end of warm-up MiB/);
  t.match(run.stdout, /Worker memory \(RSS\)/, 'tables print on the terminal');
  t.same(
    readdirSync(out).filter((f) => f.endsWith('.svg')),
    ['soak-rss.svg'],
  );
});

t.test('every chart renders in Chromium inside its canvas, labels apart', async (t) => {
  if (!haveTool(t, 'chromium', 'chromium')) return;
  const dir = join(root, 'render');
  mkdirSync(dir);
  const charts = exampleCharts();
  // The soak run's own chart, from the test above.
  charts.set('soak-rss.svg', readFileSync(join(soakOut, 'soak-rss.svg'), 'utf8'));
  const rendered = renderInChromium(dir, charts);
  t.equal(rendered.length, charts.size, 'every chart was rendered');
  for (const chart of rendered) {
    t.equal(chart.parseError, null, `${chart.name} is well-formed SVG`);
    t.equal(chart.width, 720, `${chart.name} lays out at its declared width`);
    t.ok(chart.elements > 10, `${chart.name} draws something (${chart.elements} elements)`);
    t.same(chart.outside, [], `${chart.name}: nothing drawn outside the canvas`);
    t.same(chart.overlapping, [], `${chart.name}: no two labels overlap`);
  }
});
