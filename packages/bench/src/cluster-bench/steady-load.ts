/**
 * A steady load: `streams` clients, each sending greedy completions back to back, so the
 * cluster is never idle between requests; every token's arrival is stamped. Rates over
 * time windows then show how throughput moves while something changes underneath (a
 * device throttling, the drift loop re-planning).
 */
import type { ApiTarget } from '@swarmbee/coordinator';
import { timedCompletion } from './client.js';
import { promptIds } from './scenario.js';

export interface SteadyLoadOptions {
  streams: number;
  vocab: number;
  promptTokens: number;
  /** Tokens per completion; each client sends the next as soon as one ends. */
  outputTokens: number;
  /** Clients send no new completion once this aborts; those in flight finish. */
  signal: AbortSignal;
}

export interface SteadyLoadResult {
  /** Every token's arrival (performance.now()), in order. */
  arrivals: number[];
  completions: number;
  /** Completions that ended with fewer than `outputTokens` tokens (none should). */
  shortCompletions: number;
}

/** Runs the load until `signal` aborts and the completions in flight end. */
export async function steadyLoad(
  target: ApiTarget,
  options: SteadyLoadOptions,
): Promise<SteadyLoadResult> {
  const arrivals: number[] = [];
  let sent = 0;
  let shortCompletions = 0;
  const client = async (stream: number) => {
    while (!options.signal.aborted) {
      const prompt = promptIds(
        options.promptTokens,
        stream + options.streams * sent++,
        options.vocab,
      );
      const run = await timedCompletion(target, prompt, options.outputTokens);
      for (const t of run.tokenMs) arrivals.push(run.sentAt + t);
      if (run.tokenMs.length < options.outputTokens) shortCompletions++;
    }
  };
  await Promise.all(Array.from({ length: options.streams }, (_, s) => client(s)));
  return { arrivals: arrivals.sort((a, b) => a - b), completions: sent, shortCompletions };
}

/** Tokens per second in consecutive windows of `windowMs` from `fromMs` to `toMs` (performance.now() times). */
export function windowRates(
  arrivals: readonly number[],
  fromMs: number,
  toMs: number,
  windowMs: number,
): number[] {
  const windows = Math.max(0, Math.floor((toMs - fromMs) / windowMs));
  const counts = new Array<number>(windows).fill(0);
  for (const t of arrivals) {
    const w = Math.floor((t - fromMs) / windowMs);
    if (w >= 0 && w < windows) counts[w]!++;
  }
  return counts.map((n) => (n * 1000) / windowMs);
}

/** Tokens per second between two times. */
export function rateBetween(arrivals: readonly number[], fromMs: number, toMs: number): number {
  const n = arrivals.reduce((c, t) => c + (t >= fromMs && t < toMs ? 1 : 0), 0);
  return toMs > fromMs ? (n * 1000) / (toMs - fromMs) : 0;
}
