/**
 * Starting points for the GA and PSO: the baselines' plans, encoded. With them in the
 * first generation a heuristic search is never worse than the baselines, and it holds
 * a plan that fits from its first step whenever a baseline fits.
 */
import { participantsInOrder } from './baselines.js';
import { polish } from './local-search.js';
import { compareCandidates } from './objective.js';
import type { Evaluation } from './plan-evaluation.js';
import { decode, encode, type SearchSpace } from './search-space.js';

export function seedGenomes(space: SearchSpace): Float64Array[] {
  const { cost } = space;
  const order = participantsInOrder(cost, space);
  const batches = space.objective === 'latency' ? 1 : space.microBatchCandidates.length;
  const speed = (d: number) => 1 / Math.max(1, cost.decodePrefixNs(d, 1)[cost.nLayers]!);
  const weightings = [
    order.map(() => 1),
    order.map((d) => cost.devices[d]!.memoryBytes),
    order.map(speed),
  ];
  const seeds: Float64Array[] = [];
  // One micro-batch per stage fills a pipeline; the search moves from there.
  for (let b = batches - 1; b >= 0; b--) {
    for (const weights of weightings) seeds.push(encode(space, order, weights, b, order.length));
  }
  seeds.push(encode(space, order, weightings[2]!, 0, 1));
  const byMemory = cost.devices
    .map((_, d) => d)
    .sort((x, y) => cost.devices[y]!.memoryBytes - cost.devices[x]!.memoryBytes);
  const bySpeed = cost.devices.map((_, d) => d).sort((x, y) => speed(y) - speed(x));
  for (const d of new Set([byMemory[0]!, bySpeed[0]!])) {
    if (space.pinFirst !== undefined && space.pinFirst !== d) continue;
    if (space.pinLast !== undefined && space.pinLast !== d) continue;
    seeds.push(encode(space, [d], [1], 0, 1));
  }
  return seeds;
}

/** Share of a GA/PSO budget kept for polishing the best plan found. */
export const POLISH_SHARE = 0.25;

/** Counts evaluations and remembers the best plan that fits. */
export class SearchTally {
  evaluations = 0;
  best: Evaluation | undefined;

  constructor(private readonly space: SearchSpace) {}

  evaluate(genome: Float64Array): Evaluation {
    this.evaluations++;
    const e = decode(this.space, genome);
    if (e.feasible && (!this.best || compareCandidates(this.space.objective, e, this.best) < 0)) {
      this.best = e;
    }
    return e;
  }

  /** Hill-climbs from the best plan with what is left of the budget (local-search.ts). */
  polishBest(budget: number): void {
    if (this.best)
      this.best = polish(this.space, this.best, Math.max(0, budget - this.evaluations), this);
  }

  compare(a: Evaluation, b: Evaluation): number {
    return compareCandidates(this.space.objective, a, b);
  }
}
