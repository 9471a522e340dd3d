/**
 * One `swarmbee finetune --json` run as a child process — the command users run — with
 * its peak resident memory read from /proc/<pid>/status (VmHWM) while it runs (Linux;
 * elsewhere the peak is reported as 0).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { EngineFailedError, fromWire } from '@swarmbee/core';
import { summarize } from '@swarmbee/optimize';
import type { BenchResult } from '../report/report.js';
import { barChart } from '../report/svg.js';

/** What `swarmbee finetune --json` prints (the fields the suite reads). */
export interface FinetuneJson {
  steps: number;
  tokens: number;
  trainingMs: number;
  history: { step: number; loss: number; gradNorm: number; learningRate: number }[];
  /** Each stage's counters at the end (forward and backward compute time, ms). */
  stageStats?: { forwardMsTotal: number; backwardMsTotal: number }[];
  eval: {
    data: string;
    targetTokens: number;
    before: { loss: number; perplexity: number };
    after?: { loss: number; perplexity: number };
  }[];
}

export interface FinetuneProcessRun {
  result: FinetuneJson;
  /** Training tokens (real, not padding) per second of step time. */
  tokensPerSecond: number;
  peakRssBytes: number;
}

const RSS_POLL_MS = 100;

/** Command-line words of a flag string without quoting ("--steps 8 --stages 2"). */
export function words(flags: string): string[] {
  return flags.split(' ').filter((w) => w !== '');
}

async function peakRss(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kib = status && /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : undefined;
}

/**
 * `swarmbee finetune ARGS --json` as a child process: its result, and the process's peak
 * resident memory.
 */
export async function runFinetune(
  cliBin: string,
  args: string[],
  timeoutMs: number,
): Promise<FinetuneProcessRun> {
  const { json: result, peakRssBytes } = await runCliProcess<FinetuneJson>(
    cliBin,
    ['finetune', ...args, '--json'],
    timeoutMs,
  );
  return { result, tokensPerSecond: result.tokens / (result.trainingMs / 1000), peakRssBytes };
}

/** `swarmbee ARGS` (which prints one JSON result) as a child process: the JSON it printed. */
export async function runCliJson<T>(cliBin: string, args: string[], timeoutMs: number): Promise<T> {
  return (await runCliProcess<T>(cliBin, args, timeoutMs)).json;
}

function runCliProcess<T>(
  cliBin: string,
  args: string[],
  timeoutMs: number,
): Promise<{ json: T; peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      void peakRss(child.pid).then((bytes) => {
        if (bytes !== undefined) peak = Math.max(peak, bytes);
      });
    }, RSS_POLL_MS);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      if (code !== 0) {
        // The child's own coded error, when it printed one.
        const coded = /swarmbee: error (SWARMBEE_ERR_\w+): (.*)/.exec(stderr);
        reject(
          coded
            ? fromWire({
                code: coded[1]!,
                message: `swarmbee ${args[0]}: ${coded[2]}`,
                retryable: false,
              })
            : new EngineFailedError(
                `swarmbee ${args.join(' ')} exited with ${code}: ${stderr.trim()}`,
              ),
        );
        return;
      }
      resolve({ json: JSON.parse(stdout) as T, peakRssBytes: peak });
    });
  });
}

/**
 * Runs every row once per round — in reverse order every other round, so load drifting
 * over the run favours none — and returns each row's runs in round order.
 */
export async function roundRobin<R extends { label: string }>(
  rows: readonly R[],
  rounds: number,
  run: (row: R, round: number) => Promise<FinetuneProcessRun>,
): Promise<Map<R, FinetuneProcessRun[]>> {
  const runs = new Map(rows.map((row) => [row, [] as FinetuneProcessRun[]]));
  for (let round = 0; round < rounds; round++)
    for (const row of round % 2 === 0 ? rows : [...rows].reverse())
      runs.get(row)!.push(await run(row, round));
  return runs;
}

/** Per round, `value(run) / value(baseline run)`; their median and range. */
export function roundRatios(
  runs: readonly FinetuneProcessRun[],
  baseline: readonly FinetuneProcessRun[],
  value: (run: FinetuneProcessRun) => number,
): { median: number; min: number; max: number; samples: number[] } {
  const samples = runs.map((run, i) => value(run) / value(baseline[i]!));
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median =
    sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, samples };
}

/** "0.41 (0.38–0.45)": a median ratio with its range over rounds. */
export function formatRatio(r: { median: number; min: number; max: number }): string {
  return r.min === r.max
    ? r.median.toFixed(2)
    : `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
}

/** max over steps of |loss − baseline loss| / baseline loss, of each row's first round. */
export function lossDifference(
  runs: readonly FinetuneProcessRun[],
  baseline: readonly FinetuneProcessRun[],
): number {
  const base = baseline[0]!.result.history;
  return Math.max(
    ...runs[0]!.result.history.map((h, i) => Math.abs(h.loss - base[i]!.loss) / base[i]!.loss),
  );
}

/** Each row's training tokens/s as a metric (its samples over the rounds). */
export function tokensMetrics(
  rows: readonly { row: { label: string }; runs: readonly FinetuneProcessRun[] }[],
): BenchResult['metrics'] {
  const metrics: BenchResult['metrics'] = {};
  for (const { row, runs } of rows) {
    const samples = runs.map((run) => run.tokensPerSecond);
    metrics[`train tokens/s, ${row.label}`] = {
      unit: 'tokens/s',
      summary: summarize(samples),
      samples,
    };
  }
  return metrics;
}

/** A bar chart of each row's median tokens/s, with its range over the rounds. */
export function tokensChart(
  file: string,
  title: string,
  rows: readonly { row: { label: string }; runs: readonly FinetuneProcessRun[] }[],
): BenchResult['charts'][number] {
  return {
    file,
    title,
    svg: barChart({
      title,
      unit: 'tokens/s',
      bars: rows.map(({ row, runs }) => {
        const s = summarize(runs.map((run) => run.tokensPerSecond));
        return { label: row.label, value: s.median, low: s.min, high: s.max };
      }),
    }),
  };
}
