/**
 * The plan sweep of `swarmbee bench --plans` and of the repository's planner
 * suite: profile the cluster once, then deploy each plan in turn (even split,
 * memory share, best single device, DP for latency, DP for throughput) through
 * the coordinator's re-plan route, and measure it against the cost model's
 * predictions from that same profile.
 */

import { type ApiTarget, postJson } from '@swarmbee/coordinator';
import { type ClusterProfile, DEFAULT_MAX_BATCH_ROWS, type Plan } from '@swarmbee/core';
import { CostModel, type PlanResult, stageAssignments, type Workload } from '@swarmbee/planner';
import { runCell } from './scenario.js';

export interface PlanCase {
  label: string;
  planner: 'even' | 'memory' | 'solo' | 'dp' | 'ga' | 'pso';
  objective: 'latency' | 'throughput';
}

export const PLAN_CASES: PlanCase[] = [
  { label: 'even split', planner: 'even', objective: 'throughput' },
  { label: 'memory share', planner: 'memory', objective: 'throughput' },
  { label: 'best single device', planner: 'solo', objective: 'latency' },
  { label: 'DP latency', planner: 'dp', objective: 'latency' },
  { label: 'DP throughput', planner: 'dp', objective: 'throughput' },
];

export interface PlanMeasurement {
  label: string;
  plan: PlanResult;
  /** One stream: median ms between tokens, measured and predicted. */
  tpotMs: number;
  predictedTpotMs: number;
  /** `streams` concurrent streams: completion tokens/s, measured and predicted. */
  tokensPerS: number;
  predictedTokensPerS: number;
}

export interface SweepOptions {
  profile: ClusterProfile;
  vocab: number;
  promptTokens: number;
  outputTokens: number;
  repeats: number;
  /** Micro-batch sizes plans may choose; keep them inside the profiled grid. Default [1, 2, 4, 8]. */
  microBatchCandidates?: number[];
  /**
   * Concurrent streams of the throughput cells; throughput plans are sized for them (micro-batches
   * of the rows the scheduler composes). Default: the DP throughput plan's batch x in flight.
   */
  streams?: number;
  /** Most rows the coordinator's scheduler puts in one decode micro-batch. Default its default (16). */
  maxBatchRows?: number;
  progress: (line: string) => void;
}

/** The cost model's view of a plan (tensor-parallel groups included) with `batch`-row micro-batches, `inFlight` at once. */
export function predictPlan(
  profile: ClusterProfile,
  workload: Partial<Workload>,
  plan: Plan,
  batch: number,
  inFlight: number,
) {
  const cost = new CostModel(profile, workload);
  const evaluation = cost.evaluate(stageAssignments(cost, plan), batch, inFlight);
  return { tpotMs: evaluation.tpotNs / 1e6, tokensPerS: evaluation.tokensPerS };
}

/** The re-plan request that deploys a plan case, judged on `workload`. */
export function replanBody(
  c: PlanCase,
  workload: Partial<Workload>,
  options: Pick<SweepOptions, 'microBatchCandidates' | 'streams'>,
): Record<string, unknown> {
  return {
    planner: c.planner,
    objective: c.objective,
    context_tokens: workload.contextTokens,
    prompt_tokens: workload.promptTokens,
    decode_context_tokens: workload.decodeContextTokens,
    micro_batch_candidates: options.microBatchCandidates ?? [1, 2, 4, 8],
    ...(options.streams === undefined ? {} : { streams: options.streams }),
  };
}

export async function sweepPlans(
  target: ApiTarget,
  options: SweepOptions,
): Promise<{ measured: PlanMeasurement[]; streams: number; workload: Partial<Workload> }> {
  const { profile, vocab, promptTokens, outputTokens, repeats } = options;
  // Plans are judged on the traffic this sweep sends.
  const workload: Partial<Workload> = {
    contextTokens: promptTokens + 3 * outputTokens,
    promptTokens,
    decodeContextTokens: promptTokens + outputTokens / 2,
  };
  const replan = (c: PlanCase) =>
    postJson<{ plan: PlanResult }>(target, '/swarmbee/replan', replanBody(c, workload, options));
  const measured: PlanMeasurement[] = [];
  for (const planCase of PLAN_CASES) {
    options.progress(`bench: ${planCase.label}: deploying, one stream`);
    const { plan } = await replan(planCase);
    await runCell(target, vocab, promptTokens, 8, 1, 1); // warm-up, excluded
    const single = await runCell(target, vocab, promptTokens, outputTokens, 1, repeats);
    measured.push({
      label: planCase.label,
      plan,
      tpotMs: single.tpotMs.median,
      predictedTpotMs: predictPlan(profile, workload, plan, 1, 1).tpotMs,
      tokensPerS: 0,
      predictedTokensPerS: 0,
    });
  }
  // Every plan under the load the DP throughput plan is sized for.
  const sized = measured.find((m) => m.label === 'DP throughput')!.plan;
  const streams = options.streams ?? Math.max(2, sized.microBatchSize * sized.microBatchesInFlight);
  for (const [i, entry] of measured.entries()) {
    options.progress(`bench: ${entry.label}: ${streams} concurrent streams`);
    await replan(PLAN_CASES[i]!);
    // Long enough that the first streams still decode while the last ones prefill.
    const loaded = await runCell(target, vocab, promptTokens, 3 * outputTokens, streams, repeats);
    // The coordinator keeps one micro-batch per stage in flight, or the throughput plan's count.
    const inFlight = Math.max(
      entry.plan.stages.length,
      entry.plan.objective === 'throughput' ? entry.plan.microBatchesInFlight : 1,
    );
    // The cost model predicts the steady state: every stream decoding, at the mean
    // context of these longer streams (not the one-stream cell's).
    entry.tokensPerS = loaded.steadyTokensPerS.median;
    // The rows the scheduler really puts in a decode micro-batch: the streams spread over the
    // micro-batches in flight, at most its row limit (the rest wait their turn).
    const rows = Math.min(
      options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS,
      Math.ceil(streams / inFlight),
    );
    entry.predictedTokensPerS = predictPlan(
      profile,
      { ...workload, decodeContextTokens: promptTokens + (3 * outputTokens) / 2 },
      entry.plan,
      rows,
      inFlight,
    ).tokensPerS;
  }
  return { measured, streams, workload };
}
