/**
 * Cuts that minimize the slowest stage for a fixed device order, under memory limits:
 * binary search on the stage-time bound, with a greedy fill as the test (a stage takes
 * every layer it can while it stays under the bound and fits). Both stage time and
 * memory only grow with a range, so the greedy fill answers the test exactly. Used by
 * the GA/PSO polish for throughput, where the slowest stage sets the rate.
 */
import type { CostModel } from './cost-model.js';
import type { StageAssignment } from './plan-evaluation.js';

export function balanceCuts(
  cost: CostModel,
  order: readonly number[],
  batch: number,
  sequences: number,
): StageAssignment[] | undefined {
  const L = cost.nLayers;
  const S = order.length;
  if (S === 0 || S > L) return undefined;
  const fits = (k: number, a: number, e: number) =>
    cost.stageMemoryBytes(a, e, k === 0, k === S - 1, sequences) <=
    cost.devices[order[k]!]!.memoryBytes;
  const time = (k: number, a: number, e: number) =>
    cost.stageDecodeNs(order[k]!, a, e, k === 0, k === S - 1, batch);
  const fill = (bound: number): number[] | undefined => {
    const cuts = [0];
    for (let k = 0; k < S - 1; k++) {
      const a = cuts[k]!;
      let e = a;
      while (e + 1 <= L - (S - 1 - k) && fits(k, a, e + 1) && time(k, a, e + 1) <= bound) e++;
      if (e === a) return undefined;
      cuts.push(e);
    }
    const a = cuts[S - 1]!;
    return fits(S - 1, a, L) && time(S - 1, a, L) <= bound ? cuts : undefined;
  };
  let hi = 0;
  for (let k = 0; k < S; k++) hi = Math.max(hi, time(k, 0, L));
  if (!fill(hi)) return undefined;
  let lo = 0;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (fill(mid)) hi = mid;
    else lo = mid + 1;
  }
  const cuts = fill(hi)!;
  return order.map((device, k) => ({
    device,
    layerStart: cuts[k]!,
    layerEnd: k + 1 < S ? cuts[k + 1]! : L,
  }));
}
