/**
 * Benchmark reports: `result.json` files written by `swarmbee bench`, opened with a file
 * picker (nothing leaves the browser); one is shown in full, two side by side. Charts are
 * the report's own SVG, shown as images so that nothing in a file can run script.
 */
import { h, show, table } from './dom.js';

interface Summary {
  mean?: number;
  median?: number;
  p50?: number;
  p95?: number;
  stdev?: number;
  n?: number;
}

interface BenchResult {
  suite: string;
  title: string;
  command: string;
  startedAt: string;
  durationMs: number;
  machine?: {
    cpuModel?: string;
    cpus?: number;
    memoryBytes?: number;
    platform?: string;
    arch?: string;
    node?: string;
  };
  notes?: string[];
  metrics?: Record<string, { unit: string; summary: Summary }>;
  tables?: { title: string; head: string[]; rows: (string | number)[][] }[];
  checks?: { name: string; value: number; target: string; pass: boolean; how: string }[];
  /** In result.json a chart names its .svg file; the SVG text is in the file beside it. */
  charts?: { file: string; title: string; svg?: string }[];
}

/** One run as picked: its result and the chart files picked with it, by name. */
interface Run {
  name: string;
  result: BenchResult;
  charts: Map<string, string>;
}

export function mountBench(root: HTMLElement): void {
  const pickers = [1, 2].map((n) =>
    h('input', {
      type: 'file',
      accept: '.json,.svg,application/json,image/svg+xml',
      multiple: true,
      'data-testid': `bench-file-${n}`,
    }),
  );
  const out = h('div', { class: 'bench' });
  const runs: (Run | undefined)[] = [undefined, undefined];
  const render = () => {
    const shown = runs.filter((r): r is Run => r !== undefined);
    show(
      out,
      shown.length === 2 ? compare(shown[0]!.result, shown[1]!.result) : null,
      ...shown.map(report),
    );
  };
  show(
    root,
    h(
      'p',
      {},
      'Open the result.json that ',
      h('code', {}, 'swarmbee bench'),
      ' wrote, with the .svg charts beside it if you want them drawn; open a second run to compare the two. Nothing leaves the browser.',
    ),
    h(
      'p',
      { class: 'controls' },
      h('label', {}, 'run ', pickers[0]!),
      h('label', {}, 'compare with ', pickers[1]!),
    ),
    out,
  );
  for (const [index, picker] of pickers.entries())
    picker.addEventListener('change', () => {
      read([...(picker.files ?? [])])
        .then((run) => {
          runs[index] = run;
          render();
        })
        .catch((error: Error) =>
          show(out, h('p', { class: 'error' }, `Cannot read that run: ${error.message}`)),
        );
    });
}

async function read(files: File[]): Promise<Run> {
  const json = files.find((f) => f.name.endsWith('.json'));
  if (!json) throw new Error('pick the result.json (and, if you like, its .svg charts)');
  const charts = new Map<string, string>();
  for (const file of files.filter((f) => f.name.endsWith('.svg'))) {
    // A blob URL shown as an image: an SVG so shown runs no script.
    const url = URL.createObjectURL(new Blob([await file.text()], { type: 'image/svg+xml' }));
    charts.set(file.name, url);
  }
  return { name: json.name, result: parse(await json.text()), charts };
}

function parse(text: string): BenchResult {
  const result = JSON.parse(text) as Partial<BenchResult>;
  if (typeof result.suite !== 'string' || typeof result.title !== 'string')
    throw new Error('not a swarmbee bench result.json (no suite or title)');
  return result as BenchResult;
}

function centre(s: Summary): number | undefined {
  return s.median ?? s.p50 ?? s.mean;
}

function report({ name, result: r, charts }: Run): HTMLElement {
  const m = r.machine ?? {};
  return h(
    'section',
    { class: 'bench-report', 'data-testid': 'bench-report' },
    h('h3', {}, r.title),
    h(
      'p',
      { class: 'muted' },
      `${name} · `,
      h('code', {}, r.command),
      ` · ${r.startedAt} · ${(r.durationMs / 1000).toFixed(1)} s`,
    ),
    h(
      'p',
      { class: 'muted' },
      `${m.cpuModel ?? '?'}, ${m.cpus ?? '?'} cores, ${m.platform ?? ''} ${m.arch ?? ''}, Node ${m.node ?? '?'}`,
    ),
    ...(r.notes ?? []).map((n) => h('p', { class: 'note' }, n)),
    ...(r.tables ?? []).map((t) =>
      h('div', { class: 'scroll' }, h('h4', {}, t.title), table(t.head, t.rows)),
    ),
    (r.checks ?? []).length > 0
      ? h(
          'div',
          { class: 'scroll' },
          h('h4', {}, 'Checks'),
          table(
            ['check', 'value', 'target', 'pass', 'how'],
            (r.checks ?? []).map((c) => [
              c.name,
              Number(c.value.toFixed(3)),
              c.target,
              c.pass ? 'pass' : 'FAIL',
              c.how,
            ]),
          ),
        )
      : null,
    ...(r.charts ?? []).map((c) => {
      const src =
        charts.get(c.file) ??
        (c.svg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.svg)}` : undefined);
      return h(
        'figure',
        {},
        src
          ? h('img', { src, alt: c.title, 'data-testid': 'bench-chart' })
          : h('p', { class: 'muted' }, `(open ${c.file} with the result to see this chart)`),
        h('figcaption', {}, c.title),
      );
    }),
  );
}

/** The metrics two runs share, side by side with their ratio. */
function compare(a: BenchResult, b: BenchResult): HTMLElement {
  const rows: (string | number)[][] = [];
  for (const [name, metric] of Object.entries(a.metrics ?? {})) {
    const other = b.metrics?.[name];
    const x = centre(metric.summary);
    const y = other ? centre(other.summary) : undefined;
    if (x === undefined || y === undefined) continue;
    rows.push([
      name,
      metric.unit,
      Number(x.toFixed(3)),
      Number(y.toFixed(3)),
      x === 0 ? '–' : Number((y / x).toFixed(3)),
    ]);
  }
  return h(
    'section',
    { class: 'bench-report', 'data-testid': 'bench-compare' },
    h('h3', {}, `${a.title} vs ${b.title}`),
    rows.length > 0
      ? h(
          'div',
          { class: 'scroll' },
          table(['metric', 'unit', 'first', 'second', 'second / first'], rows),
        )
      : h('p', { class: 'muted' }, 'The two runs share no metric.'),
  );
}
