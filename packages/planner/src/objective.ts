/** What "better" means for each objective, over cost-model evaluations. */
import type { CostModel } from './cost-model.js';
import type { Evaluation } from './plan-evaluation.js';
import type { Objective } from './types.js';

/** Negative when `a` has the higher tokens/s, exactly (cross-multiplied). */
export function compareRates(a: Evaluation, b: Evaluation): number {
  // tokens/s = b·M / cycle: cross-multiply so equal rates compare equal exactly.
  const left = a.microBatchSize * a.microBatchesInFlight * b.cycleNs;
  const right = b.microBatchSize * b.microBatchesInFlight * a.cycleNs;
  if (left <= Number.MAX_SAFE_INTEGER && right <= Number.MAX_SAFE_INTEGER) return right - left;
  const l = BigInt(a.microBatchSize * a.microBatchesInFlight) * BigInt(b.cycleNs);
  const r = BigInt(b.microBatchSize * b.microBatchesInFlight) * BigInt(a.cycleNs);
  return l > r ? -1 : l < r ? 1 : 0;
}

/**
 * Negative when `a` is the better plan, positive when `b` is, 0 on a tie. Latency:
 * TPOT, then TTFT. Throughput: tokens/s, then TPOT. Feasibility is not looked at here.
 */
export function compareEvaluations(objective: Objective, a: Evaluation, b: Evaluation): number {
  if (objective === 'latency') return a.tpotNs - b.tpotNs || a.ttftNs - b.ttftNs;
  return compareRates(a, b) || a.tpotNs - b.tpotNs;
}

/** Like {@link compareEvaluations}, but any plan that fits beats one that does not, and of two that do not, the one closer to fitting wins. */
export function compareCandidates(objective: Objective, a: Evaluation, b: Evaluation): number {
  if (a.feasible !== b.feasible) return a.feasible ? -1 : 1;
  if (!a.feasible) return a.overBytes - b.overBytes || compareEvaluations(objective, a, b);
  return compareEvaluations(objective, a, b);
}

/**
 * Micro-batches in flight a plan may keep: what the request fixes, else 1 for latency,
 * else 1 to 2·S + 1 for S = the most stages possible. A loop of S stages and S + 1 links
 * is saturated by 2·S + 1 micro-batches unless link delays dwarf every busy time; more
 * would only cost KV memory.
 */
export function inFlightChoices(cost: CostModel, objective: Objective, fixed?: number): number[] {
  if (fixed !== undefined) return [fixed];
  if (objective === 'latency') return [1];
  const most = 2 * Math.min(cost.devices.length, cost.nLayers) + 1;
  return Array.from({ length: most }, (_, i) => i + 1);
}

/** A micro-batch size and how many are kept in flight. */
export interface BatchRun {
  batch: number;
  inFlight: number;
}

/**
 * The (micro-batch size, count in flight) pairs a plan may run. Latency: (1, 1). Throughput
 * with the workload's `streams`: each count M in flight with the rows the scheduler gives it,
 * min(largest candidate, ⌈streams / M⌉). Otherwise every candidate size with every count.
 */
export function batchRuns(
  cost: CostModel,
  objective: Objective,
  candidates: readonly number[],
  fixedInFlight?: number,
): BatchRun[] {
  const inFlight = inFlightChoices(cost, objective, fixedInFlight);
  if (objective === 'latency') return inFlight.map((m) => ({ batch: 1, inFlight: m }));
  const { streams } = cost.workload;
  if (streams !== undefined) {
    const largest = Math.max(...candidates);
    const runs = inFlight.map((m) => ({
      batch: Math.min(largest, Math.ceil(streams / m)),
      inFlight: m,
    }));
    // Counts past the streams' own would only send empty micro-batches.
    return runs.filter((r, i) => i === 0 || (r.inFlight - 1) * r.batch < streams);
  }
  return [...new Set(candidates)].flatMap((batch) => inFlight.map((m) => ({ batch, inFlight: m })));
}
