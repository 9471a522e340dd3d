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
  charts?: { file: string; title: string; svg: string }[];
}

export function mountBench(root: HTMLElement): void {
  const picker = h('input', {
    type: 'file',
    accept: '.json,application/json',
    multiple: true,
    'data-testid': 'bench-file',
  });
  const out = h('div', { class: 'bench' });
  show(
    root,
    h(
      'p',
      {},
      'Open one result.json from ',
      h('code', {}, 'swarmbee bench'),
      ' to see it, or two to compare them. ',
      picker,
    ),
    out,
  );
  picker.addEventListener('change', () => {
    const files = [...(picker.files ?? [])].slice(0, 2);
    Promise.all(files.map(async (file) => ({ name: file.name, result: parse(await file.text()) })))
      .then((results) =>
        show(
          out,
          ...(results.length === 2 ? [compare(results[0]!.result, results[1]!.result)] : []),
          ...results.map((r) => report(r.name, r.result)),
        ),
      )
      .catch((error: Error) =>
        show(out, h('p', { class: 'error' }, `Cannot read that file: ${error.message}`)),
      );
  });
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

function report(name: string, r: BenchResult): HTMLElement {
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
    ...(r.charts ?? []).map((c) =>
      h(
        'figure',
        {},
        h('img', {
          src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.svg)}`,
          alt: c.title,
        }),
        h('figcaption', {}, c.title),
      ),
    ),
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
