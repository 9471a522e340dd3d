/**
 * The search space the GA and PSO share: a plan encoded as random keys, so every point
 * of [0, 1]^D decodes to a pipeline and both searches can move freely.
 *
 * Genes, per device i: an order key (devices run in ascending key order) and a share
 * (a device takes part when its share is at least one half; its layers are in
 * proportion to its share). Two last genes pick the micro-batch size and the number of
 * micro-batches in flight. Pinned devices always take part, first or last.
 *
 * Decoding repairs: the cuts are moved to the nearest ones that fit every device's
 * memory, and devices are added (largest memory first) while the chosen ones cannot
 * hold the model. A genome that still does not fit is kept but ranks below every plan
 * that fits (see compareCandidates), and the planners only ever return verified plans.
 */
import type { CostModel } from './cost-model.js';
import { inFlightChoices } from './objective.js';
import type { Evaluation, StageAssignment } from './plan-evaluation.js';
import type { Objective } from './types.js';

export interface SearchSpace {
  cost: CostModel;
  objective: Objective;
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  microBatchesInFlight?: number;
}

/** Shares at or above this take part. */
export const PARTICIPATION_SHARE = 0.5;

/** Largest ratio between two devices' layer weights a genome can express (a laptop next to a Pi). */
export const LAYER_WEIGHT_RANGE = 32;

/** A participating share in [0.5, 1] mapped to a layer weight in [1, LAYER_WEIGHT_RANGE], geometrically. */
function layerWeight(share: number): number {
  const t =
    (Math.max(share, PARTICIPATION_SHARE) - PARTICIPATION_SHARE) / (1 - PARTICIPATION_SHARE);
  return LAYER_WEIGHT_RANGE ** Math.min(1, t);
}

export function genomeLength(space: SearchSpace): number {
  return 2 * space.cost.devices.length + 2;
}

/** The choice a gene in [0, 1) points at. */
function chosen<T>(choices: readonly T[], gene: number): T {
  return choices[Math.min(choices.length - 1, Math.floor(gene * choices.length))]!;
}

/** Cuts a fixed device order into contiguous ranges that fit, as close as possible to the wished counts. */
export function fitCuts(
  cost: CostModel,
  order: readonly number[],
  wished: readonly number[],
  sequences: number,
): StageAssignment[] | undefined {
  const L = cost.nLayers;
  const S = order.length;
  if (S === 0 || S > L) return undefined;
  const perToken = cost.workload.contextTokens * sequences;
  const { embeddingBytes, headBytes, tiedEmbedding } = cost.model;
  const param = cost.paramPrefix;
  const kv = cost.kvPrefix;
  const mem = (k: number, a: number, e: number) => {
    let bytes = param[e]! - param[a]! + (kv[e]! - kv[a]!) * perToken;
    if (k === 0) bytes += embeddingBytes;
    if (k === S - 1)
      bytes += k === 0 && tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes;
    return bytes;
  };
  const fits = (k: number, a: number, e: number) =>
    mem(k, a, e) <= cost.devices[order[k]!]!.memoryBytes;
  // Furthest end stage k (not the last) can reach from `a`, leaving a layer for each later stage.
  const maxEnd = (k: number, a: number) => {
    let lo = a;
    let hi = L - (S - 1 - k);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (fits(k, a, mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Left-greedy fill: each stage takes all it can, so the cuts are as far right as they can be.
  const high = [0];
  for (let k = 0; k < S - 1; k++) {
    const e = maxEnd(k, high[k]!);
    if (e <= high[k]!) return undefined;
    high.push(e);
  }
  if (!fits(S - 1, high[S - 1]!, L)) return undefined;
  // Right-greedy fill: the cuts as far left as they can be.
  const low = new Array<number>(S + 1).fill(0);
  low[S] = L;
  for (let k = S - 1; k >= 1; k--) {
    let lo = k;
    let hi = low[k + 1]! - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fits(k, mid, low[k + 1]!)) hi = mid;
      else lo = mid + 1;
    }
    low[k] = lo;
  }
  const total = wished.reduce((s, w) => s + w, 0);
  const cuts = [0];
  let acc = 0;
  for (let k = 1; k < S; k++) {
    acc += wished[k - 1]!;
    const want = Math.round((acc / total) * L);
    const lo = Math.max(low[k]!, cuts[k - 1]! + 1);
    const hi = Math.min(high[k]!, maxEnd(k - 1, cuts[k - 1]!));
    if (lo > hi) return rangesOf(order, high, L);
    cuts.push(Math.min(hi, Math.max(lo, want)));
  }
  const ranges = rangesOf(order, cuts, L);
  return ranges.every((r, k) => fits(k, r.layerStart, r.layerEnd))
    ? ranges
    : rangesOf(order, high, L);
}

function rangesOf(order: readonly number[], cuts: readonly number[], L: number): StageAssignment[] {
  return order.map((device, k) => ({
    device,
    layerStart: cuts[k]!,
    layerEnd: k + 1 < order.length ? cuts[k + 1]! : L,
  }));
}

/** Decodes and repairs a genome into a plan and its evaluation (infeasible only if repair failed). */
export function decode(space: SearchSpace, genome: Float64Array): Evaluation {
  const { cost, objective, pinFirst, pinLast } = space;
  const N = cost.devices.length;
  const L = cost.nLayers;
  const batch = chosen(objective === 'latency' ? [1] : space.microBatchCandidates, genome[2 * N]!);
  const inFlight = chosen(
    inFlightChoices(cost, objective, space.microBatchesInFlight),
    genome[2 * N + 1]!,
  );
  const pinned = (d: number) => d === pinFirst || d === pinLast;
  let middle: number[] = [];
  const alone = pinFirst !== undefined && pinFirst === pinLast;
  for (let d = 0; d < N && !alone; d++) {
    if (!pinned(d) && genome[N + d]! >= PARTICIPATION_SHARE) middle.push(d);
  }
  const room =
    L - (pinFirst !== undefined ? 1 : 0) - (pinLast !== undefined && pinLast !== pinFirst ? 1 : 0);
  if (middle.length > room) {
    middle = middle.sort((x, y) => genome[N + y]! - genome[N + x]!).slice(0, Math.max(0, room));
  }
  const spare = cost.devices
    .map((_, d) => d)
    .filter((d) => !pinned(d) && !middle.includes(d))
    .sort((x, y) => cost.devices[y]!.memoryBytes - cost.devices[x]!.memoryBytes || x - y);
  const share = (d: number) => layerWeight(genome[N + d]!);
  let closest: Evaluation | undefined;
  for (;;) {
    middle.sort((x, y) => genome[x]! - genome[y]! || x - y);
    const order = [...middle];
    if (pinFirst !== undefined) order.unshift(pinFirst);
    if (pinLast !== undefined && pinLast !== pinFirst) order.push(pinLast);
    // One device pinned as both first and last is the whole pipeline: nothing may join it.
    if (alone) spare.length = 0;
    if (order.length === 0 && spare.length > 0) {
      middle.push(spare.shift()!);
      continue;
    }
    const stages = fitCuts(cost, order, order.map(share), batch * inFlight);
    if (stages) return cost.evaluate(stages, batch, inFlight);
    if (!closest) {
      const even = order.map((device, k) => ({
        device,
        layerStart: Math.floor((k * L) / order.length),
        layerEnd: Math.floor(((k + 1) * L) / order.length),
      }));
      closest = cost.evaluate(even, batch, inFlight);
    }
    if (spare.length === 0 || order.length >= L) return closest;
    middle.push(spare.shift()!);
  }
}

/** A genome that decodes to the given device order and layer weights (how baselines seed the searches). */
export function encode(
  space: SearchSpace,
  order: readonly number[],
  weights: readonly number[],
  batchIndex: number,
  inFlight: number,
): Float64Array {
  const N = space.cost.devices.length;
  const genome = new Float64Array(genomeLength(space));
  const least = Math.max(Math.min(...weights), 1e-12);
  for (let d = 0; d < N; d++) {
    genome[d] = 1;
    genome[N + d] = 0;
  }
  order.forEach((d, k) => {
    genome[d] = k / Math.max(1, order.length);
    // The inverse of layerWeight: shares in [0.5, 1] keep the device in.
    const t = Math.log(Math.max(weights[k]!, least) / least) / Math.log(LAYER_WEIGHT_RANGE);
    genome[N + d] = PARTICIPATION_SHARE + (1 - PARTICIPATION_SHARE) * Math.min(1, t);
  });
  const cands = space.objective === 'latency' ? 1 : space.microBatchCandidates.length;
  genome[2 * N] = (batchIndex + 0.5) / cands;
  const choices = inFlightChoices(space.cost, space.objective, space.microBatchesInFlight);
  const at = choices.reduce(
    (best, m, i) => (Math.abs(m - inFlight) < Math.abs(choices[best]! - inFlight) ? i : best),
    0,
  );
  genome[2 * N + 1] = (at + 0.5) / choices.length;
  return genome;
}
