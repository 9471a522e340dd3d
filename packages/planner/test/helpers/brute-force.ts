/**
 * The oracle: every ordered subset of devices (respecting pins), every cut into
 * contiguous ranges, every micro-batch size and count in flight, each evaluated by the
 * cost model. Written
 * without any of the planners' code so it can judge them.
 */
import {
  type CostModel,
  compareEvaluations,
  type Evaluation,
  type Objective,
  type StageAssignment,
} from '../../src/index.js';

export interface BruteForceOptions {
  objective: Objective;
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  microBatchesInFlight?: number;
}

function* orders(n: number, size: number, used: boolean[], prefix: number[]): Generator<number[]> {
  if (prefix.length === size) {
    yield [...prefix];
    return;
  }
  for (let d = 0; d < n; d++) {
    if (used[d]) continue;
    used[d] = true;
    prefix.push(d);
    yield* orders(n, size, used, prefix);
    prefix.pop();
    used[d] = false;
  }
}

function* cuts(nLayers: number, parts: number, start: number): Generator<number[]> {
  if (parts === 1) {
    yield [nLayers];
    return;
  }
  for (let end = start + 1; end <= nLayers - (parts - 1); end++) {
    for (const rest of cuts(nLayers, parts - 1, end)) yield [end, ...rest];
  }
}

/** The best plan that fits, or undefined; also how many plans were looked at. */
export function bruteForce(
  cost: CostModel,
  o: BruteForceOptions,
): { best: Evaluation | undefined; plans: number } {
  const N = cost.devices.length;
  const L = cost.nLayers;
  const batches = o.objective === 'latency' ? [1] : o.microBatchCandidates;
  // Throughput may keep 1 to 2·S_max + 1 micro-batches in flight (S_max = most stages possible).
  const most = 2 * Math.min(N, L) + 1;
  const inFlightChoices =
    o.microBatchesInFlight !== undefined
      ? [o.microBatchesInFlight]
      : o.objective === 'latency'
        ? [1]
        : Array.from({ length: most }, (_, i) => i + 1);
  let best: Evaluation | undefined;
  let plans = 0;
  for (let size = 1; size <= Math.min(N, L); size++) {
    for (const order of orders(N, size, new Array(N).fill(false), [])) {
      if (o.pinFirst !== undefined && order[0] !== o.pinFirst) continue;
      if (o.pinLast !== undefined && order[size - 1] !== o.pinLast) continue;
      for (const ends of cuts(L, size, 0)) {
        const stages: StageAssignment[] = order.map((device, k) => ({
          device,
          layerStart: k === 0 ? 0 : ends[k - 1]!,
          layerEnd: ends[k]!,
        }));
        for (const batch of batches) {
          for (const inFlight of inFlightChoices) {
            plans++;
            const e = cost.evaluate(stages, batch, inFlight);
            if (!e.feasible) continue;
            if (!best || compareEvaluations(o.objective, e, best) < 0) best = e;
          }
        }
      }
    }
  }
  return { best, plans };
}
