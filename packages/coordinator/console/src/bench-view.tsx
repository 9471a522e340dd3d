/**
 * Benchmark reports: `result.json` files written by `swarmbee bench`, opened with a file
 * picker (nothing leaves the browser) or from the coordinator's recent runs (when it was
 * started with --bench-dir); one is shown in full, two side by side. Charts are the
 * report's own SVG, shown as images so that nothing in a file can run script.
 */
import { useEffect, useState } from 'preact/hooks';
import { getJson, getText } from './api.js';
import { Table } from './table.js';

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

/** `visible`: the view is shown (the coordinator's runs are listed anew each time). */
export function BenchView(props: { visible: boolean }) {
  const [runs, setRuns] = useState<(Run | undefined)[]>([undefined, undefined]);
  const [error, setError] = useState('');
  const show = (index: number, loading: Promise<Run>) =>
    loading
      .then((run) => {
        setError('');
        setRuns((all) => all.map((r, i) => (i === index ? run : r)));
      })
      .catch((e: Error) => setError(`Cannot read that run: ${e.message}`));
  const shown = runs.filter((r): r is Run => r !== undefined);
  return (
    <>
      <p>
        Open the result.json that <code>swarmbee bench</code> wrote, with the .svg charts beside it
        if you want them drawn; open a second run to compare the two. Nothing leaves the browser.
      </p>
      <p class="controls">
        {['run', 'compare with'].map((label, index) => (
          <label key={label}>
            {label}{' '}
            <input
              type="file"
              accept=".json,.svg,application/json,image/svg+xml"
              multiple
              data-testid={`bench-file-${index + 1}`}
              onChange={(e) => void show(index, read([...(e.currentTarget.files ?? [])]))}
            />
          </label>
        ))}
      </p>
      {props.visible && <RecentRuns open={(index, name) => void show(index, fetchRun(name))} />}
      <div class="bench">
        {error && <p class="error">{error}</p>}
        {shown.length === 2 && <Comparison a={shown[0]!.result} b={shown[1]!.result} />}
        {runs.map((run, slot) => run && <Report key={slot === 0 ? 'run' : 'other'} run={run} />)}
      </div>
    </>
  );
}

/** The coordinator's recent runs, to open as the run or the one to compare with. */
function RecentRuns(props: { open: (index: number, name: string) => void }) {
  const [runs, setRuns] = useState<{ name: string; writtenAt: number }[] | undefined>();
  const [chosen, setChosen] = useState('');
  useEffect(() => {
    getJson<{ runs: { name: string; writtenAt: number }[] }>('/swarmbee/bench')
      .then((answer) => {
        setRuns(answer.runs);
        setChosen(answer.runs[0]?.name ?? '');
      })
      // Not listed (no --bench-dir) or not reachable: the file pickers remain.
      .catch(() => setRuns(undefined));
  }, []);
  if (!runs) return null;
  if (runs.length === 0)
    return <p class="muted">The coordinator's benchmark directory holds no runs yet.</p>;
  return (
    <p class="controls" data-testid="bench-recent">
      <label>
        or a recent run on the coordinator{' '}
        <select value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
          {runs.map((run) => (
            <option key={run.name} value={run.name}>
              {run.name} ({new Date(run.writtenAt).toLocaleString()})
            </option>
          ))}
        </select>
      </label>
      <button type="button" onClick={() => props.open(0, chosen)}>
        Open
      </button>
      <button type="button" onClick={() => props.open(1, chosen)}>
        Compare with
      </button>
    </p>
  );
}

/** A run from the coordinator's directory: its result.json and the charts it names. */
async function fetchRun(name: string): Promise<Run> {
  const base = `/swarmbee/bench/${encodeURIComponent(name)}`;
  const result = parse(await getText(`${base}/result.json`));
  const charts = new Map<string, string>();
  for (const chart of result.charts ?? []) {
    const svg = await getText(`${base}/${encodeURIComponent(chart.file)}`).catch(() => undefined);
    if (svg !== undefined) charts.set(chart.file, svgUrl(svg));
  }
  return { name, result, charts };
}

/** A blob URL shown as an image: an SVG so shown runs no script. */
function svgUrl(svg: string): string {
  return URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
}

async function read(files: File[]): Promise<Run> {
  const json = files.find((f) => f.name.endsWith('.json'));
  if (!json) throw new Error('pick the result.json (and, if you like, its .svg charts)');
  const charts = new Map<string, string>();
  for (const file of files.filter((f) => f.name.endsWith('.svg')))
    charts.set(file.name, svgUrl(await file.text()));
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

function Report(props: { run: Run }) {
  const { name, result: r, charts } = props.run;
  const m = r.machine ?? {};
  const checks = r.checks ?? [];
  return (
    <section class="bench-report" data-testid="bench-report">
      <h3>{r.title}</h3>
      <p class="muted">
        {name} · <code>{r.command}</code> · {r.startedAt} · {(r.durationMs / 1000).toFixed(1)} s
      </p>
      <p class="muted">
        {m.cpuModel ?? '?'}, {m.cpus ?? '?'} cores, {m.platform ?? ''} {m.arch ?? ''}, Node{' '}
        {m.node ?? '?'}
      </p>
      {(r.notes ?? []).map((n) => (
        <p key={n} class="note">
          {n}
        </p>
      ))}
      {(r.tables ?? []).map((t) => (
        <div key={t.title} class="scroll">
          <h4>{t.title}</h4>
          <Table head={t.head} rows={t.rows} />
        </div>
      ))}
      {checks.length > 0 && (
        <div class="scroll">
          <h4>Checks</h4>
          <Table
            head={['check', 'value', 'target', 'pass', 'how']}
            rows={checks.map((c) => [
              c.name,
              Number(c.value.toFixed(3)),
              c.target,
              c.pass ? 'pass' : 'FAIL',
              c.how,
            ])}
          />
        </div>
      )}
      {(r.charts ?? []).map((c) => {
        const src =
          charts.get(c.file) ??
          (c.svg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.svg)}` : undefined);
        return (
          <figure key={c.file}>
            {src ? (
              <img src={src} alt={c.title} data-testid="bench-chart" />
            ) : (
              <p class="muted">(open {c.file} with the result to see this chart)</p>
            )}
            <figcaption>{c.title}</figcaption>
          </figure>
        );
      })}
    </section>
  );
}

/** The metrics two runs share, side by side with their ratio. */
function Comparison(props: { a: BenchResult; b: BenchResult }) {
  const { a, b } = props;
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
  return (
    <section class="bench-report" data-testid="bench-compare">
      <h3>
        {a.title} vs {b.title}
      </h3>
      {rows.length > 0 ? (
        <div class="scroll">
          <Table head={['metric', 'unit', 'first', 'second', 'second / first']} rows={rows} />
        </div>
      ) : (
        <p class="muted">The two runs share no metric.</p>
      )}
    </section>
  );
}
