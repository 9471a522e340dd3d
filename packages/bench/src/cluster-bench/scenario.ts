/**
 * The latency and throughput matrix of `swarmbee bench`: for each prompt length,
 * output length and concurrency, streams of greedy completions, timed token by
 * token. Warm-up runs first and is excluded; each cell repeats and reports
 * medians and percentiles.
 */

import type { ApiTarget } from '@swarmbee/coordinator';
import { type Summary, summarize } from '@swarmbee/optimize';
import { type TimedCompletion, timedCompletion } from './client.js';

export interface Matrix {
  promptTokens: number[];
  outputTokens: number[];
  concurrency: number[];
  /** Rounds per cell; each round runs `concurrency` streams at once. */
  repeats: number;
}

export const DEFAULT_MATRIX: Matrix = {
  promptTokens: [16, 128],
  outputTokens: [32, 128],
  concurrency: [1, 4, 8],
  repeats: 3,
};

export interface CellResult {
  promptTokens: number;
  outputTokens: number;
  concurrency: number;
  ttftMs: Summary;
  /** Gaps between consecutive tokens of a stream, ms. */
  tpotMs: Summary;
  e2eMs: Summary;
  /** Completion tokens per second of wall time, all streams together, per round. */
  tokensPerS: Summary;
  /**
   * Tokens per second while every stream was decoding (after the last first token, before
   * the first stream ended): the steady state, without prefill and ragged ends. Per round.
   */
  steadyTokensPerS: Summary;
  samples: {
    ttftMs: number[];
    tpotMs: number[];
    e2eMs: number[];
    tokensPerS: number[];
    steadyTokensPerS: number[];
  };
}

/** A seeded prompt of token ids of the given length, different per stream. */
export function promptIds(length: number, stream: number, vocab: number): number[] {
  return Array.from({ length }, (_, i) =>
    i === 0 ? 1 : 3 + ((stream * 7919 + i * 104_729) % (vocab - 3)),
  );
}

/** Tokens per second in the window where every stream was between its first and last token. */
export function steadyRate(runs: readonly TimedCompletion[]): number {
  const times = runs.map((r) => r.tokenMs.map((t) => r.sentAt + t));
  const from = Math.max(...times.map((t) => t[0] ?? Number.POSITIVE_INFINITY));
  const to = Math.min(...times.map((t) => t.at(-1) ?? Number.NEGATIVE_INFINITY));
  const inWindow = times.reduce((n, t) => n + t.filter((x) => x > from && x <= to).length, 0);
  if (to > from && inWindow >= runs.length) return (inWindow * 1000) / (to - from);
  // The streams barely overlapped: every token after each stream's first, over their span.
  const start = Math.min(...times.map((t) => t[0] ?? Number.POSITIVE_INFINITY));
  const end = Math.max(...times.map((t) => t.at(-1) ?? Number.NEGATIVE_INFINITY));
  return (
    (times.reduce((n, t) => n + Math.max(0, t.length - 1), 0) * 1000) / Math.max(1, end - start)
  );
}

export async function runCell(
  target: ApiTarget,
  vocab: number,
  prompt: number,
  output: number,
  concurrency: number,
  repeats: number,
): Promise<CellResult> {
  const samples = {
    ttftMs: [] as number[],
    tpotMs: [] as number[],
    e2eMs: [] as number[],
    tokensPerS: [] as number[],
    steadyTokensPerS: [] as number[],
  };
  for (let round = 0; round < repeats; round++) {
    const started = performance.now();
    const runs: TimedCompletion[] = await Promise.all(
      Array.from({ length: concurrency }, (_, s) =>
        timedCompletion(target, promptIds(prompt, round * concurrency + s, vocab), output),
      ),
    );
    const wallS = (performance.now() - started) / 1000;
    for (const run of runs) {
      samples.ttftMs.push(run.ttftMs);
      samples.e2eMs.push(run.e2eMs);
      for (let i = 1; i < run.tokenMs.length; i++)
        samples.tpotMs.push(run.tokenMs[i]! - run.tokenMs[i - 1]!);
    }
    samples.tokensPerS.push(runs.reduce((n, r) => n + r.tokenMs.length, 0) / wallS);
    samples.steadyTokensPerS.push(steadyRate(runs));
  }
  return {
    promptTokens: prompt,
    outputTokens: output,
    concurrency,
    ttftMs: summarize(samples.ttftMs),
    tpotMs: summarize(samples.tpotMs),
    e2eMs: summarize(samples.e2eMs),
    tokensPerS: summarize(samples.tokensPerS),
    steadyTokensPerS: summarize(samples.steadyTokensPerS),
    samples,
  };
}

export async function runMatrix(
  target: ApiTarget,
  vocab: number,
  matrix: Matrix,
  progress: (line: string) => void,
): Promise<CellResult[]> {
  // Warm-up, excluded: sessions, allocators and caches reach their steady shapes.
  await runCell(
    target,
    vocab,
    Math.min(...matrix.promptTokens),
    8,
    Math.max(...matrix.concurrency),
    1,
  );
  const cells: CellResult[] = [];
  for (const prompt of matrix.promptTokens) {
    for (const output of matrix.outputTokens) {
      for (const concurrency of matrix.concurrency) {
        progress(`bench: prompt ${prompt}, output ${output}, ${concurrency} concurrent stream(s)`);
        cells.push(await runCell(target, vocab, prompt, output, concurrency, matrix.repeats));
      }
    }
  }
  return cells;
}
