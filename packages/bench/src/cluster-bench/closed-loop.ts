/**
 * The planner suite's closed-loop case: the DP throughput plan deployed again, this time
 * with the coordinator's drift loop on, under a steady load long enough for the loop to
 * judge its stages and re-plan; then the loop is frozen and the plan it settled on is
 * measured exactly as the sweep measured every plan, so the figures compare.
 */
import type { Coordinator, DriftEvent, DriftOptions } from '@swarmbee/coordinator';
import { type ApiTarget, postJson } from '@swarmbee/coordinator';
import type { PlanResult } from '@swarmbee/planner';
import { runCell } from './scenario.js';
import { steadyLoad } from './steady-load.js';

export interface ClosedLoopOptions {
  /** The body of the sweep's DP throughput re-plan request. */
  replanBody: Record<string, unknown>;
  loop: DriftOptions;
  /** How long the loop serves before it is frozen, ms. */
  serveMs: number;
  streams: number;
  vocab: number;
  promptTokens: number;
  outputTokens: number;
  repeats: number;
  progress: (line: string) => void;
}

export interface ClosedLoopResult {
  planBefore: PlanResult;
  planAfter: PlanResult;
  decisions: DriftEvent[];
  /** The settled plan under the sweep's throughput cell: steady tokens/s. */
  tokensPerS: number;
}

export async function closedLoop(
  target: ApiTarget,
  coordinator: Coordinator,
  options: ClosedLoopOptions,
): Promise<ClosedLoopResult> {
  const { plan } = await postJson<{ plan: PlanResult }>(
    target,
    '/swarmbee/replan',
    options.replanBody,
  );
  const since = Date.now();
  coordinator.configureDrift(options.loop);
  options.progress(
    `bench: DP throughput with the drift loop: serving ${options.streams} streams for ${options.serveMs / 1000} s`,
  );
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), options.serveMs);
  try {
    await steadyLoad(target, {
      streams: options.streams,
      vocab: options.vocab,
      promptTokens: options.promptTokens,
      outputTokens: options.outputTokens,
      signal: stop.signal,
    });
  } finally {
    clearTimeout(timer);
    coordinator.configureDrift({ threshold: 0 });
  }
  const decisions = (
    coordinator.describe() as { drift: { events: DriftEvent[] } }
  ).drift.events.filter((e) => e.at >= since);
  options.progress('bench: the plan the loop settled on: measuring');
  const loaded = await runCell(
    target,
    options.vocab,
    options.promptTokens,
    3 * options.outputTokens,
    options.streams,
    options.repeats,
  );
  return {
    planBefore: plan,
    planAfter: (coordinator.plan as PlanResult | undefined) ?? plan,
    decisions,
    tokensPerS: loaded.steadyTokensPerS.median,
  };
}
