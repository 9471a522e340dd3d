/**
 * The exact planner: EdgeShard's dynamic program over (layers × devices), extended.
 *
 * A state is (ℓ, c, u): layers [0, ℓ) are placed, c[t] devices of each type t are used
 * (see device-types.ts), and the last stage runs on type u. A transition appends one
 * stage: a device of type v that is still free runs layers [ℓ, e). Devices not used by
 * a finished pipeline do not take part, every device runs at most one contiguous range,
 * and the order of types along the path is the order of devices in the pipeline — so
 * device selection, order and cuts are all chosen by the same search.
 *
 * A state keeps labels, not one number, so the objective is exact:
 * - latency: (TPOT so far, prefill sum, prefill max). TPOT is a sum, so only labels with
 *   the least TPOT survive; among them the Pareto set of (sum, max) keeps the TTFT
 *   tie-break exact (TTFT = sum + (K − 1)·max, see cost-model.ts).
 * - throughput: (TPOT so far, busiest resource so far), Pareto set. The rate with M
 *   micro-batches in flight is b·M / max(M·busiest, TPOT): neither a pure sum nor a
 *   pure max, which is why the pair is kept.
 * Memory limits are checked on every transition; when M = number of stages (the
 * default), the KV cache depends on the final stage count S, so throughput runs once per
 * (micro-batch b, S) and requires exactly S stages.
 *
 * Complexity per run: O(L² · T · Π(n_t + 1) · T · F) for L layers, T device types with
 * n_t devices each and F labels per state (1 for latency in practice, small for
 * throughput). Identical devices collapse into one type, so 16 Pis cost like one type
 * with 17 counts, while 16 all-different devices cost 2^16 mixes: the state space is
 * exponential in the number of *distinct* devices. Pruning keeps the practical cost far
 * below the bound: a range stops growing once it overflows memory or (throughput) makes
 * its stage slower than the best plan found, and admissible lower bounds discard partial
 * pipelines that cannot beat it. Past `dpStateLimit` states the DP refuses with
 * PlanTooLargeError; the GA and PSO planners answer there.
 */
import { PlanTooLargeError, SwarmBeeError } from '@swarmbee/core';
import type { CostModel, Evaluation, StageAssignment } from './cost-model.js';
import { type DeviceType, groupDeviceTypes } from './device-types.js';
import { buildTypeTables, remainingDecodeBound } from './dp-tables.js';
import { LabelPool } from './labels.js';
import { compareEvaluations } from './objective.js';
import type { Objective } from './types.js';

/** Default largest state space the DP accepts. */
export const DEFAULT_DP_STATE_LIMIT = 4_000_000;

export interface DpOptions {
  /** Device indices. */
  pinFirst?: number;
  pinLast?: number;
  microBatchCandidates: readonly number[];
  /** Fixed micro-batches in flight; undefined means one per stage (throughput) or 1 (latency). */
  microBatchesInFlight?: number;
  stateLimit?: number;
}

export interface DpResult {
  evaluation: Evaluation;
  /** Labels created over all runs: the work the search did. */
  labels: number;
}

interface Run {
  batch: number;
  inFlight: number;
  /** Exact number of stages, when the KV budget depends on it. */
  stages: number | undefined;
}

interface Space {
  cost: CostModel;
  objective: Objective;
  types: DeviceType[];
  pinFirstType: number;
  pinLastType: number;
}

interface RunBest {
  pool: LabelPool;
  id: number;
  tpotNs: number;
  /** TTFT (latency) or busiest resource (throughput). */
  second: number;
}

/** Relative slack when comparing against a rate from another run (float division). */
const CROSS_RUN_SLACK = 1e-9;

function search(space: Space, run: Run, crossRunLimit: number): RunBest | undefined {
  const { cost, objective, types } = space;
  const L = cost.nLayers;
  const tables = buildTypeTables(cost, types, run.batch);
  const T = tables.types;
  const counts = tables.counts;
  const radix: number[] = [];
  let C = 1;
  for (let t = 0; t < T; t++) {
    radix.push(C);
    C *= counts[t]! + 1;
  }
  const slot = new Int32Array((L + 1) * C * T).fill(-1);
  const lists: number[][] = [];
  const levels: number[][] = Array.from({ length: L + 1 }, () => []);
  const pool = new LabelPool();
  const latency = objective === 'latency';
  const M = run.inFlight;
  const S = run.stages;
  const K1 = cost.prefillChunks - 1;
  const rest = remainingDecodeBound(tables, L);
  const sequences = run.batch * run.inFlight;
  const kvBytesPerLayerToken = cost.workload.contextTokens * sequences;
  const { embeddingBytes, headBytes, tiedEmbedding } = cost.model;
  const param = cost.paramPrefix;
  const kv = cost.kvPrefix;
  const { pinFirstType, pinLastType } = space;

  let bestId = -1;
  let bestTpot = Number.POSITIVE_INFINITY;
  let bestSecond = Number.POSITIVE_INFINITY;
  // Throughput: the best cycle (M × busiest vs TPOT) seen; anything slower is pruned.
  let limit = crossRunLimit;

  const insert = (
    e: number,
    cIdx: number,
    v: number,
    a: number,
    b: number,
    c: number,
    prev: number,
    start: number,
  ) => {
    const key = (e * C + cIdx) * T + v;
    let at = slot[key]!;
    if (at < 0) {
      at = lists.length;
      slot[key] = at;
      lists.push([]);
      levels[e]!.push(key);
    }
    const list = lists[at]!;
    if (latency && list.length > 0) {
      const a0 = pool.a[list[0]!]!;
      if (a > a0) return;
      if (a < a0) list.length = 0;
    }
    const pb = pool.b;
    const pc = pool.c;
    const pa = pool.a;
    for (const id of list) {
      if (latency ? pb[id]! <= b && pc[id]! <= c : pa[id]! <= a && pb[id]! <= b) return;
    }
    let keep = 0;
    for (const id of list) {
      const dominated = latency ? b <= pb[id]! && c <= pc[id]! : a <= pa[id]! && b <= pb[id]!;
      if (!dominated) list[keep++] = id;
    }
    list.length = keep;
    list.push(pool.add(a, b, c, prev, v, start, e));
  };

  const expand = (l: number, cIdx: number, u: number, labels: readonly number[] | null) => {
    let k = 0;
    for (let t = 0; t < T; t++) k += Math.floor(cIdx / radix[t]!) % (counts[t]! + 1);
    const first = k === 0;
    const nextK = k + 1;
    if (S !== undefined && nextK > S) return;
    const minA = labels === null ? 0 : pool.a[labels[0]!]!;
    for (let v = 0; v < T; v++) {
      if (Math.floor(cIdx / radix[v]!) % (counts[v]! + 1) >= counts[v]!) continue;
      if (first && pinFirstType >= 0 && v !== pinFirstType) continue;
      const hl = first ? tables.inLatencyNs[v]! : tables.hopLatencyNs[u * T + v]!;
      const hd = first ? tables.inDecodeNs[v]! : tables.hopDecodeNs[u * T + v]!;
      const hp = first ? tables.inPrefillNs[v]! : tables.hopPrefillNs[u * T + v]!;
      // The pinned last device may only end the pipeline; nothing else may.
      let eMin = l + 1;
      let eMax = L;
      if (v === pinLastType) eMin = L;
      else if (pinLastType >= 0) eMax = L - 1;
      if (S !== undefined) {
        if (nextK === S) eMin = L;
        else eMax = Math.min(eMax, L - (S - nextK));
      }
      if (eMin > eMax) continue;
      const memLimit = tables.memoryBytes[v]!;
      const dec = tables.decodePrefix[v]!;
      const pre = tables.prefillPrefix[v]!;
      const firstDec = first ? tables.embeddingDecodeNs[v]! : 0;
      const firstPre = first ? tables.embeddingPrefillNs[v]! : 0;
      const firstMem = first ? embeddingBytes : 0;
      const cNext = cIdx + radix[v]!;
      const count = labels === null ? 1 : labels.length;

      // Returns false when longer (non-final) ranges cannot help either.
      const consider = (e: number): boolean => {
        const last = e === L;
        const stageDec = dec[e]! - dec[l]! + firstDec + (last ? tables.headDecodeNs[v]! : 0);
        if (!latency && M * stageDec > limit) return false;
        if (latency && minA + hl + hd + stageDec + rest[e]! > bestTpot) return false;
        const stagePre = pre[e]! - pre[l]! + firstPre;
        for (let i = 0; i < count; i++) {
          const x = labels === null ? -1 : labels[i]!;
          const xa = x < 0 ? 0 : pool.a[x]!;
          const xb = x < 0 ? 0 : pool.b[x]!;
          const a = xa + hl + hd + stageDec;
          if (latency) {
            const b = xb + hl + hp + stagePre;
            const c = Math.max(x < 0 ? 0 : pool.c[x]!, hp, stagePre);
            if (last) {
              const tpot = a + tables.outLatencyNs[v]! + tables.outDecodeNs[v]!;
              const ttft =
                b +
                K1 * c +
                tables.headFirstTokenNs[v]! +
                tables.outLatencyNs[v]! +
                tables.outFirstTokenNs[v]!;
              if (tpot < bestTpot || (tpot === bestTpot && ttft < bestSecond)) {
                bestTpot = tpot;
                bestSecond = ttft;
                bestId = pool.add(tpot, ttft, 0, x, v, l, e);
              }
            } else if (a + rest[e]! <= bestTpot) {
              insert(e, cNext, v, a, b, c, x, l);
            }
          } else {
            const busiest = Math.max(xb, hd, stageDec);
            if (last) {
              const tpot = a + tables.outLatencyNs[v]! + tables.outDecodeNs[v]!;
              const occ = Math.max(busiest, tables.outDecodeNs[v]!);
              const cycle = Math.max(M * occ, tpot);
              const bestCycle = Math.max(M * bestSecond, bestTpot);
              if (cycle < bestCycle || (cycle === bestCycle && tpot < bestTpot)) {
                bestTpot = tpot;
                bestSecond = occ;
                bestId = pool.add(tpot, occ, 0, x, v, l, e);
                limit = Math.min(limit, cycle);
              }
            } else if (Math.max(M * busiest, a + rest[e]!) <= limit) {
              insert(e, cNext, v, a, busiest, 0, x, l);
            }
          }
        }
        return true;
      };

      let fits = true;
      for (let e = l + 1; e < Math.min(eMax + 1, L); e++) {
        const mem = param[e]! - param[l]! + (kv[e]! - kv[l]!) * kvBytesPerLayerToken + firstMem;
        if (mem > memLimit) {
          fits = false;
          break;
        }
        if (e >= eMin && !consider(e)) break;
      }
      if (fits && eMax === L) {
        const headMem =
          first && tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes;
        const mem =
          param[L]! - param[l]! + (kv[L]! - kv[l]!) * kvBytesPerLayerToken + firstMem + headMem;
        if (mem <= memLimit) consider(L);
      }
    }
  };

  expand(0, 0, -1, null);
  for (let l = 1; l < L; l++) {
    for (const key of levels[l]!) {
      const labels = lists[slot[key]!]!;
      if (labels.length === 0) continue;
      const u = key % T;
      const cIdx = Math.floor(key / T) % C;
      expand(l, cIdx, u, labels);
    }
  }
  if (bestId < 0) return undefined;
  return { pool, id: bestId, tpotNs: bestTpot, second: bestSecond };
}

function toStages(space: Space, best: RunBest): StageAssignment[] {
  const used = space.types.map(() => 0);
  return best.pool.stages(best.id).map(({ type, start, end }) => ({
    device: space.types[type]!.members[used[type]!++]!,
    layerStart: start,
    layerEnd: end,
  }));
}

function runsFor(cost: CostModel, objective: Objective, options: DpOptions): Run[] {
  if (objective === 'latency') {
    return [{ batch: 1, inFlight: options.microBatchesInFlight ?? 1, stages: undefined }];
  }
  const runs: Run[] = [];
  const maxStages = Math.min(cost.devices.length, cost.nLayers);
  // Large micro-batches first: they usually win, and a good early incumbent prunes the rest.
  const batches = [...new Set(options.microBatchCandidates)].sort((x, y) => y - x);
  for (const batch of batches) {
    if (options.microBatchesInFlight !== undefined) {
      runs.push({ batch, inFlight: options.microBatchesInFlight, stages: undefined });
      continue;
    }
    for (let s = 1; s <= maxStages; s++) runs.push({ batch, inFlight: s, stages: s });
  }
  return runs;
}

/** True when no S devices can hold the whole model at this KV budget, whatever the cut. */
function cannotFit(cost: CostModel, run: Run, sortedMemory: readonly number[]): boolean {
  const L = cost.nLayers;
  const { embeddingBytes, headBytes, tiedEmbedding } = cost.model;
  const need =
    cost.paramPrefix[L]! +
    cost.kvPrefix[L]! * cost.workload.contextTokens * run.batch * run.inFlight +
    embeddingBytes +
    (tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes);
  const stages = run.stages ?? sortedMemory.length;
  let have = 0;
  for (let i = 0; i < stages && i < sortedMemory.length; i++) have += sortedMemory[i]!;
  return need > have;
}

/** Device types for the DP, with pinned devices alone in theirs. */
export function dpTypes(cost: CostModel, pinFirst?: number, pinLast?: number): DeviceType[] {
  const alone = new Set<number>();
  if (pinFirst !== undefined) alone.add(pinFirst);
  if (pinLast !== undefined) alone.add(pinLast);
  return groupDeviceTypes(cost, alone);
}

/** Size of the DP's state space for a grouping: (L + 1) · Π(n_t + 1) · T. */
export function dpStateCount(nLayers: number, types: readonly DeviceType[]): number {
  return types.reduce((n, t) => n * (t.members.length + 1), (nLayers + 1) * types.length);
}

/** The optimal plan under the cost model, or undefined when no plan fits. */
export function planDp(
  cost: CostModel,
  objective: Objective,
  options: DpOptions,
): DpResult | undefined {
  const types = dpTypes(cost, options.pinFirst, options.pinLast);
  const limit = options.stateLimit ?? DEFAULT_DP_STATE_LIMIT;
  const states = dpStateCount(cost.nLayers, types);
  if (states > limit) {
    throw new PlanTooLargeError(
      `the exact planner would track ${states.toExponential(1)} states for ${cost.devices.length} devices of ` +
        `${types.length} distinct kinds (limit ${limit.toExponential(1)}); use planner "ga" or "pso", ` +
        'or raise dpStateLimit',
    );
  }
  const typeOf = (device: number | undefined) =>
    device === undefined ? -1 : types.findIndex((t) => t.members.includes(device));
  const space: Space = {
    cost,
    objective,
    types,
    pinFirstType: typeOf(options.pinFirst),
    pinLastType: typeOf(options.pinLast),
  };
  const sortedMemory = cost.devices.map((d) => d.memoryBytes).sort((x, y) => y - x);
  let best: Evaluation | undefined;
  let labels = 0;
  for (const run of runsFor(cost, objective, options)) {
    if (cannotFit(cost, run, sortedMemory)) continue;
    let crossRunLimit = Number.POSITIVE_INFINITY;
    if (best && objective === 'throughput') {
      // Cycle this run must not exceed to match the best rate so far (b·M / cycle).
      crossRunLimit = ((run.batch * run.inFlight) / best.tokensPerS) * 1e9 * (1 + CROSS_RUN_SLACK);
    }
    const found = search(space, run, crossRunLimit);
    if (!found) continue;
    labels += found.pool.size;
    const evaluation = cost.evaluate(toStages(space, found), run.batch, run.inFlight);
    const agrees =
      evaluation.feasible &&
      evaluation.tpotNs === found.tpotNs &&
      (objective === 'latency' ? evaluation.ttftNs : evaluation.maxOccupancyNs) === found.second;
    if (!agrees) {
      throw new SwarmBeeError(
        `internal: the DP predicted tpot ${found.tpotNs} ns / ${found.second} but the cost model says ` +
          `${evaluation.tpotNs} ns (feasible: ${evaluation.feasible})`,
      );
    }
    if (!best || compareEvaluations(objective, evaluation, best) < 0) best = evaluation;
  }
  return best ? { evaluation: best, labels } : undefined;
}
