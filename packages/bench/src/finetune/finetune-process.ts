/**
 * One `swarmbee finetune --json` run as a child process — the command users run — with
 * its peak resident memory read from /proc/<pid>/status (VmHWM) while it runs (Linux;
 * elsewhere the peak is reported as 0).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { EngineFailedError, fromWire } from '@swarmbee/core';

/** What `swarmbee finetune --json` prints (the fields the suite reads). */
export interface FinetuneJson {
  steps: number;
  tokens: number;
  trainingMs: number;
  history: { step: number; loss: number; gradNorm: number; learningRate: number }[];
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

export function runFinetune(
  cliBin: string,
  args: string[],
  timeoutMs: number,
): Promise<FinetuneProcessRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, 'finetune', ...args, '--json'], {
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
                message: `swarmbee finetune: ${coded[2]}`,
                retryable: false,
              })
            : new EngineFailedError(
                `swarmbee finetune ${args.join(' ')} exited with ${code}: ${stderr.trim()}`,
              ),
        );
        return;
      }
      const result = JSON.parse(stdout) as FinetuneJson;
      resolve({
        result,
        tokensPerSecond: result.tokens / (result.trainingMs / 1000),
        peakRssBytes: peak,
      });
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
