/**
 * One run of the DP: a fixed micro-batch size b and number of micro-batches in flight M,
 * which fix every stage's KV budget. See dp.ts for the model.
 *
 * States are visited in order of layers placed; a state is (ℓ, type mix c, last type u)
 * packed into one integer key. Labels (labels.ts) carry the costs; `a` is TPOT so far in
 * both objectives, `b`/`c` are the prefill sum/max (latency) or the busiest resource
 * (throughput).
 */
import type { CostModel } from './cost-model.js';
import type { DeviceType } from './device-types.js';
import { RemainingBound } from './dp-bounds.js';
import { buildTypeTables, type TypeTables } from './dp-tables.js';
import type { LabelPool } from './labels.js';
import type { Objective } from './types.js';

export interface RunSpec {
  batch: number;
  inFlight: number;
}

export interface TypeRules {
  types: readonly DeviceType[];
  /** Type that must run stage 0 / the last stage; -1 for none. */
  pinFirstType: number;
  pinLastType: number;
}

export interface RunBest {
  pool: LabelPool;
  id: number;
  tpotNs: number;
  /** TTFT (latency) or the busiest resource (throughput). */
  second: number;
}

export class DpSearch {
  private readonly tables: TypeTables;
  private readonly bounds: RemainingBound;
  private readonly T: number;
  private readonly C: number;
  private readonly L: number;
  private readonly radix: number[] = [];
  /** digits[cIdx * T + t]: devices of type t used in mix cIdx. */
  private readonly digits: Uint8Array;
  private readonly stagesOf: Uint16Array;
  /** Devices still free in mix cIdx. */
  private readonly freeOf: Uint16Array;
  // Allocated by solve(): a run skipped on its bound costs no state arrays.
  private slot = new Int32Array(0);
  private readonly lists: number[][] = [];
  private levels: number[][] = [];
  /** Lower bound on remaining layer work by (ℓ, cIdx); NaN until computed. */
  private workBound = new Float64Array(0);
  private readonly free: Float64Array;
  private readonly latency: boolean;
  private readonly counts: number[];
  private readonly kvPerLayerToken: number;
  private readonly K1: number;
  private bestId = -1;
  private bestTpot = Number.POSITIVE_INFINITY;
  private bestSecond = Number.POSITIVE_INFINITY;
  /** Throughput: the largest cycle (max of M × busiest and TPOT) still worth exploring. */
  private limit = Number.POSITIVE_INFINITY;

  constructor(
    private readonly cost: CostModel,
    objective: Objective,
    private readonly rules: TypeRules,
    readonly run: RunSpec,
    /** Shared by the runs of one planning call, emptied by solve(). */
    readonly pool: LabelPool,
  ) {
    this.latency = objective === 'latency';
    this.tables = buildTypeTables(cost, rules.types, run.batch);
    this.counts = rules.types.map((t) => t.members.length);
    this.T = this.counts.length;
    this.L = cost.nLayers;
    let C = 1;
    for (const n of this.counts) {
      this.radix.push(C);
      C *= n + 1;
    }
    this.C = C;
    this.digits = new Uint8Array(C * this.T);
    this.stagesOf = new Uint16Array(C);
    this.freeOf = new Uint16Array(C);
    const devices = this.counts.reduce((n, c) => n + c, 0);
    for (let c = 0; c < C; c++) {
      let k = 0;
      for (let t = 0; t < this.T; t++) {
        const d = Math.floor(c / this.radix[t]!) % (this.counts[t]! + 1);
        this.digits[c * this.T + t] = d;
        k += d;
      }
      this.stagesOf[c] = k;
      this.freeOf[c] = devices - k;
    }
    this.free = new Float64Array(this.T);
    const sequences = run.batch * run.inFlight;
    this.bounds = new RemainingBound(cost, this.tables, sequences);
    this.kvPerLayerToken = cost.workload.contextTokens * sequences;
    this.K1 = cost.prefillChunks - 1;
  }

  /**
   * A lower bound on what any plan of this run scores: TPOT (latency) or the cycle
   * max(M × busiest, TPOT) (throughput). ∞ when the devices cannot hold the model.
   */
  startBound(): number {
    const work = this.bounds.work(0, this.counts, false);
    if (work === Number.POSITIVE_INFINITY) return work;
    const sum = this.bounds.total(0, work, false);
    if (this.latency) return sum;
    const devices = this.counts.reduce((n, c) => n + c, 0);
    return Math.max(this.run.inFlight * (work / devices), sum);
  }

  /**
   * Runs the search. `incumbent` is what some plan achieves — a TPOT (latency) or a
   * cycle at this run's b and M (throughput); only plans at least as good are looked
   * for. The best plan found, or undefined when none is.
   */
  solve(incumbent: number): RunBest | undefined {
    if (this.latency) this.bestTpot = incumbent;
    else this.limit = incumbent;
    this.pool.size = 0;
    this.slot = new Int32Array((this.L + 1) * this.C * this.T).fill(-1);
    this.workBound = new Float64Array((this.L + 1) * this.C).fill(Number.NaN);
    this.levels = Array.from({ length: this.L + 1 }, () => []);
    this.expand(0, 0, -1, null);
    for (let l = 1; l < this.L; l++) {
      for (const key of this.levels[l]!) {
        const labels = this.lists[this.slot[key]!]!;
        if (labels.length > 0)
          this.expand(l, Math.floor(key / this.T) % this.C, key % this.T, labels);
      }
    }
    if (this.bestId < 0) return undefined;
    return { pool: this.pool, id: this.bestId, tpotNs: this.bestTpot, second: this.bestSecond };
  }

  /** Lower bound on the layer work after [0, ℓ) with mix cIdx, cached. */
  private work(l: number, cIdx: number): number {
    const at = l * this.C + cIdx;
    let w = this.workBound[at]!;
    if (Number.isNaN(w)) {
      for (let t = 0; t < this.T; t++)
        this.free[t] = this.counts[t]! - this.digits[cIdx * this.T + t]!;
      w = this.bounds.work(l, this.free, this.stagesOf[cIdx]! > 0);
      this.workBound[at] = w;
    }
    return w;
  }

  /** Whether a partial pipeline with TPOT-so-far `a` and busiest `busiest` can still win. */
  private promising(l: number, cIdx: number, a: number, busiest: number): boolean {
    const work = this.work(l, cIdx);
    if (work === Number.POSITIVE_INFINITY) return false;
    const sum = a + this.bounds.total(l, work, this.stagesOf[cIdx]! > 0);
    if (this.latency) return sum <= this.bestTpot;
    // The remaining layers spread over at most one stage per free device (and per layer).
    const stagesLeft = Math.min(this.L - l, this.freeOf[cIdx]!);
    const spread = stagesLeft > 0 ? work / stagesLeft : 0;
    return Math.max(this.run.inFlight * Math.max(busiest, spread), sum) <= this.limit;
  }

  private insert(
    e: number,
    cIdx: number,
    v: number,
    a: number,
    b: number,
    c: number,
    prev: number,
    start: number,
  ): void {
    const key = (e * this.C + cIdx) * this.T + v;
    let at = this.slot[key]!;
    if (at < 0) {
      at = this.lists.length;
      this.slot[key] = at;
      this.lists.push([]);
      this.levels[e]!.push(key);
    }
    const list = this.lists[at]!;
    const { pool, latency } = this;
    if (latency && list.length > 0) {
      const a0 = pool.a[list[0]!]!;
      if (a > a0) return;
      if (a < a0) list.length = 0;
    }
    for (const id of list) {
      if (latency ? pool.b[id]! <= b && pool.c[id]! <= c : pool.a[id]! <= a && pool.b[id]! <= b)
        return;
    }
    let keep = 0;
    for (const id of list) {
      const dominated = latency
        ? b <= pool.b[id]! && c <= pool.c[id]!
        : a <= pool.a[id]! && b <= pool.b[id]!;
      if (!dominated) list[keep++] = id;
    }
    list.length = keep;
    list.push(pool.add(a, b, c, prev, v, start, e));
  }

  private expand(l: number, cIdx: number, u: number, labels: readonly number[] | null): void {
    const { T, L, tables, pool, rules, latency } = this;
    const k = this.stagesOf[cIdx]!;
    const first = k === 0;
    const M = this.run.inFlight;
    const count = labels === null ? 1 : labels.length;
    let minA = Number.POSITIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const x = labels === null ? -1 : labels[i]!;
      const a = x < 0 ? 0 : pool.a[x]!;
      if (this.promising(l, cIdx, a, x < 0 ? 0 : pool.b[x]!)) minA = Math.min(minA, a);
    }
    if (minA === Number.POSITIVE_INFINITY) return;
    const param = this.cost.paramPrefix;
    const kv = this.cost.kvPrefix;
    const { embeddingBytes, headBytes, tiedEmbedding } = this.cost.model;
    for (let v = 0; v < T; v++) {
      if (this.digits[cIdx * T + v]! >= this.counts[v]!) continue;
      if (first && rules.pinFirstType >= 0 && v !== rules.pinFirstType) continue;
      const hl = first ? tables.inLatencyNs[v]! : tables.hopLatencyNs[u * T + v]!;
      const hd = first ? tables.inDecodeNs[v]! : tables.hopDecodeNs[u * T + v]!;
      const hp = first ? tables.inPrefillNs[v]! : tables.hopPrefillNs[u * T + v]!;
      // The pinned last device may only end the pipeline; nothing else may end it.
      let eMin = l + 1;
      let eMax = L;
      if (v === rules.pinLastType) eMin = L;
      else if (rules.pinLastType >= 0) eMax = L - 1;
      if (eMin > eMax) continue;
      const memLimit = tables.memoryBytes[v]!;
      const dec = tables.decodePrefix[v]!;
      const fixedDec =
        tables.stageOverheadDecodeNs[v]! + (first ? tables.embeddingDecodeNs[v]! : 0);
      const firstMem = first ? embeddingBytes : 0;
      const cNext = cIdx + this.radix[v]!;
      let fits = true;
      for (let e = l + 1; e <= eMax && e < L; e++) {
        const mem = param[e]! - param[l]! + (kv[e]! - kv[l]!) * this.kvPerLayerToken + firstMem;
        if (mem > memLimit) {
          fits = false;
          break;
        }
        if (e < eMin) continue;
        // Stage time only grows with e, so once a range is too slow, longer ones are too.
        const stageDec = dec[e]! - dec[l]! + fixedDec;
        if (latency ? minA + hl + hd + stageDec > this.bestTpot : M * stageDec > this.limit) break;
        this.extend(labels, count, l, e, v, cNext, hl, hd, hp, stageDec, first);
      }
      if (fits && eMax === L) {
        const headMem =
          first && tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes;
        const mem =
          param[L]! - param[l]! + (kv[L]! - kv[l]!) * this.kvPerLayerToken + firstMem + headMem;
        if (mem <= memLimit) {
          const stageDec = dec[L]! - dec[l]! + fixedDec + tables.headDecodeNs[v]!;
          this.extend(labels, count, l, L, v, cNext, hl, hd, hp, stageDec, first);
        }
      }
    }
  }

  /** Appends stage [l, e) on type v to every label of the state. */
  private extend(
    labels: readonly number[] | null,
    count: number,
    l: number,
    e: number,
    v: number,
    cNext: number,
    hl: number,
    hd: number,
    hp: number,
    stageDec: number,
    first: boolean,
  ): void {
    const { pool, tables, latency, L } = this;
    const last = e === L;
    const M = this.run.inFlight;
    const pre = tables.prefillPrefix[v]!;
    const stagePre =
      pre[e]! -
      pre[l]! +
      tables.stageOverheadPrefillNs[v]! +
      (first ? tables.embeddingPrefillNs[v]! : 0);
    const outL = tables.outLatencyNs[v]!;
    const outD = tables.outDecodeNs[v]!;
    for (let i = 0; i < count; i++) {
      const x = labels === null ? -1 : labels[i]!;
      const a = (x < 0 ? 0 : pool.a[x]!) + hl + hd + stageDec;
      const xb = x < 0 ? 0 : pool.b[x]!;
      if (latency) {
        const b = xb + hl + hp + stagePre;
        const c = Math.max(x < 0 ? 0 : pool.c[x]!, hp, stagePre);
        if (last) {
          const tpot = a + outL + outD;
          const ttft =
            b + this.K1 * c + tables.headFirstTokenNs[v]! + outL + tables.outFirstTokenNs[v]!;
          if (tpot < this.bestTpot || (tpot === this.bestTpot && ttft < this.bestSecond)) {
            this.bestTpot = tpot;
            this.bestSecond = ttft;
            this.bestId = pool.add(tpot, ttft, 0, x, v, l, e);
          }
        } else if (this.promising(e, cNext, a, 0)) {
          this.insert(e, cNext, v, a, b, c, x, l);
        }
      } else {
        const busiest = Math.max(xb, hd, stageDec);
        if (last) {
          const tpot = a + outL + outD;
          const occ = Math.max(busiest, outD);
          const cycle = Math.max(M * occ, tpot);
          const bestCycle = Math.max(M * this.bestSecond, this.bestTpot);
          if (
            cycle <= this.limit &&
            (cycle < bestCycle || (cycle === bestCycle && tpot < this.bestTpot))
          ) {
            this.bestTpot = tpot;
            this.bestSecond = occ;
            this.bestId = pool.add(tpot, occ, 0, x, v, l, e);
            this.limit = cycle;
          }
        } else if (this.promising(e, cNext, a, busiest)) {
          this.insert(e, cNext, v, a, busiest, 0, x, l);
        }
      }
    }
  }
}
