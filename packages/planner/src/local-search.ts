/**
 * Polishing for the GA and PSO: hill climbing on a plan itself rather than its genome.
 * Random keys are good at choosing devices and their order, poor at the last few layers
 * of balance that decide a pipeline's bottleneck; these moves fix exactly that. Moves,
 * tried in a fixed order (so runs repeat): shift one cut by up to a few layers, swap two
 * neighbouring stages' devices, hand a stage to an unused device, split a stage with an
 * unused device, merge a stage into a neighbour, and change the micro-batch size or the
 * number in flight by one step. A move
 * that overflows a device is re-cut to the nearest cuts that fit. Pins never move. Only
 * plans the cost model says fit are accepted.
 */
import { balanceCuts } from './balance.js';
import { compareCandidates, compareRates, inFlightChoices } from './objective.js';
import type { Evaluation, StageAssignment } from './plan-evaluation.js';
import { fitCuts, type SearchSpace } from './search-space.js';

/** Largest cut shift tried, in layers; larger shifts come from repeated moves. */
const MAX_SHIFT = 4;

interface Counter {
  evaluations: number;
}

interface Move {
  stages: StageAssignment[];
  batch: number;
  inFlight: number;
  /** The devices changed: worth re-cutting from scratch. */
  rebalance?: boolean;
}

function* neighbours(space: SearchSpace, plan: Evaluation): Generator<Move> {
  const { cost, pinFirst, pinLast } = space;
  const stages = plan.stages.map(({ device, layerStart, layerEnd }) => ({
    device,
    layerStart,
    layerEnd,
  }));
  const S = stages.length;
  const batch = plan.microBatchSize;
  const inFlight = plan.microBatchesInFlight;
  const copy = () => stages.map((s) => ({ ...s }));
  yield { stages: copy(), batch, inFlight, rebalance: true };
  const movable = (k: number) =>
    !(k === 0 && pinFirst !== undefined) && !(k === S - 1 && pinLast !== undefined);
  for (let k = 0; k + 1 < S; k++) {
    for (let shift = 1; shift <= MAX_SHIFT; shift++) {
      for (const sign of [-1, 1]) {
        const cut = stages[k]!.layerEnd + sign * shift;
        if (cut <= stages[k]!.layerStart || cut >= stages[k + 1]!.layerEnd) continue;
        const next = copy();
        next[k]!.layerEnd = cut;
        next[k + 1]!.layerStart = cut;
        yield { stages: next, batch, inFlight };
      }
    }
  }
  for (let k = 0; k + 1 < S; k++) {
    if (!movable(k) || !movable(k + 1)) continue;
    const next = copy();
    [next[k]!.device, next[k + 1]!.device] = [next[k + 1]!.device, next[k]!.device];
    yield { stages: next, batch, inFlight, rebalance: true };
  }
  const used = new Set(stages.map((s) => s.device));
  const unused = cost.devices
    .map((_, d) => d)
    .filter((d) => !used.has(d) && d !== pinFirst && d !== pinLast);
  for (let k = 0; k < S; k++) {
    for (const d of unused) {
      if (movable(k)) {
        const next = copy();
        next[k]!.device = d;
        yield { stages: next, batch, inFlight, rebalance: true };
      }
      const { layerStart, layerEnd } = stages[k]!;
      if (layerEnd - layerStart < 2) continue;
      const mid = Math.floor((layerStart + layerEnd) / 2);
      // Split: the new device takes the back half, unless this is the pinned last stage.
      const front = k === S - 1 && pinLast !== undefined;
      const next = copy();
      const added = front
        ? { device: d, layerStart, layerEnd: mid }
        : { device: d, layerStart: mid, layerEnd };
      if (front) next[k]!.layerStart = mid;
      else next[k]!.layerEnd = mid;
      next.splice(front ? k : k + 1, 0, added);
      if (front && k === 0 && pinFirst !== undefined) continue;
      yield { stages: next, batch, inFlight, rebalance: true };
    }
  }
  for (let k = 0; k < S && S > 1; k++) {
    if (!movable(k)) continue;
    const next = copy();
    const [gone] = next.splice(k, 1);
    if (k > 0) next[k - 1]!.layerEnd = gone!.layerEnd;
    else next[0]!.layerStart = gone!.layerStart;
    yield { stages: next, batch, inFlight, rebalance: true };
  }
  if (space.objective === 'throughput') {
    for (const b of space.microBatchCandidates) {
      if (b !== batch) yield { stages: copy(), batch: b, inFlight, rebalance: true };
    }
    for (const m of inFlightChoices(cost, 'throughput', space.microBatchesInFlight)) {
      if (Math.abs(m - inFlight) === 1)
        yield { stages: copy(), batch, inFlight: m, rebalance: true };
    }
  }
}

/** Stages as slow as the slowest: fewer means closer to lowering the bottleneck. */
function crowding(e: Evaluation): number {
  return e.stages.filter((s) => s.decodeNs === e.maxOccupancyNs).length;
}

/**
 * The climb's order. Throughput plateaus when several stages tie as the slowest and
 * relieving one does not raise the rate yet; counting the tied stages lets the climb
 * walk such a plateau (the count falls strictly, so it cannot cycle).
 */
function climbOrder(space: SearchSpace, a: Evaluation, b: Evaluation): number {
  if (space.objective === 'latency') return compareCandidates('latency', a, b);
  return compareRates(a, b) || crowding(a) - crowding(b) || a.tpotNs - b.tpotNs;
}

/** Climbs from `start` while a neighbour is better and the budget lasts; the best plan seen. */
export function polish(
  space: SearchSpace,
  start: Evaluation,
  budget: number,
  counter: Counter,
): Evaluation {
  const { cost, objective } = space;
  let current = start;
  let best = start;
  const stop = counter.evaluations + budget;
  let improved = true;
  while (improved && counter.evaluations < stop) {
    improved = false;
    for (const move of neighbours(space, current)) {
      if (counter.evaluations >= stop) break;
      counter.evaluations++;
      const { inFlight } = move;
      let e = cost.evaluate(move.stages, move.batch, inFlight);
      if (!e.feasible) {
        // A move that overflows a device (a new stage raises everyone's KV budget) gets
        // the nearest cuts that fit, for the same devices in the same order.
        const order = move.stages.map((stage) => stage.device);
        const wished = move.stages.map((stage) => stage.layerEnd - stage.layerStart);
        const repaired = fitCuts(cost, order, wished, move.batch * inFlight);
        if (!repaired) continue;
        counter.evaluations++;
        e = cost.evaluate(repaired, move.batch, inFlight);
      }
      if (objective === 'throughput' && move.rebalance) {
        // A new set or order of devices deserves cuts balanced for it, not inherited ones.
        const order = move.stages.map((stage) => stage.device);
        const balanced = balanceCuts(cost, order, move.batch, move.batch * inFlight);
        if (balanced) {
          counter.evaluations++;
          const b = cost.evaluate(balanced, move.batch, inFlight);
          if (b.feasible && (!e.feasible || climbOrder(space, b, e) < 0)) e = b;
        }
      }
      if (e.feasible && climbOrder(space, e, current) < 0) {
        current = e;
        if (compareCandidates(objective, current, best) < 0) best = current;
        improved = true;
        break;
      }
    }
  }
  return best;
}
