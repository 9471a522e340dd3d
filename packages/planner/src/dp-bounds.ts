/**
 * Admissible lower bounds on the decode time still to come, so the DP can discard
 * partial pipelines that cannot beat the best plan known — without ever discarding the
 * optimum. Two bounds, the larger wins:
 *
 * - per layer: every remaining layer on its fastest type, plus the cheapest head, hop
 *   and return to the coordinator;
 * - memory-aware (fractional knapsack): the remaining layers' bytes must sit on the
 *   devices still free, and a device of type t spends at least `ratio_t` ns per byte it
 *   holds (its best time-per-byte over all layers). Filling the cheapest capacity first
 *   bounds the time from below; when the free devices cannot hold the remaining bytes at
 *   all, the state is dead (bound = ∞).
 */
import type { CostModel } from './cost-model.js';
import type { TypeTables } from './dp-tables.js';

export class RemainingBound {
  /** Per-layer bound by layers placed (index ℓ), including the head/hop/return constants. */
  readonly perLayer: Float64Array;
  private readonly constants: number;
  private readonly startConstants: number;
  private readonly remainingBytes: Float64Array;
  /** Types sorted by ratio, cheapest first. */
  private readonly byRatio: number[];
  private readonly ratio: Float64Array;
  private readonly usable: boolean;
  /** Bytes the last stage must add for the head, and stage 0 for the embedding, at least. */
  private readonly headBytes: number;
  private readonly embeddingBytes: number;

  constructor(
    cost: CostModel,
    private readonly tables: TypeTables,
    sequences: number,
  ) {
    const L = cost.nLayers;
    const T = tables.types;
    let minHead = Number.POSITIVE_INFINITY;
    let minOut = Number.POSITIVE_INFINITY;
    let minHop = Number.POSITIVE_INFINITY;
    let minIn = Number.POSITIVE_INFINITY;
    for (let t = 0; t < T; t++) {
      minHead = Math.min(minHead, tables.headDecodeNs[t]!);
      minIn = Math.min(minIn, tables.inLatencyNs[t]! + tables.inDecodeNs[t]!);
      minOut = Math.min(minOut, tables.outLatencyNs[t]! + tables.outDecodeNs[t]!);
      for (let v = 0; v < T; v++) {
        const hop = tables.hopLatencyNs[t * T + v]! + tables.hopDecodeNs[t * T + v]!;
        if (hop < minHop) minHop = hop;
      }
    }
    if (!Number.isFinite(minHop)) minHop = 0;
    this.constants = minHead + minOut + minHop;
    // Before stage 0 the hop still to come is the coordinator's, not one between devices.
    this.startConstants = minHead + minOut + minIn;
    this.perLayer = new Float64Array(L + 1);
    this.remainingBytes = new Float64Array(L + 1);
    const perToken = cost.workload.contextTokens * sequences;
    let rest = 0;
    let usable = true;
    this.ratio = new Float64Array(T).fill(Number.POSITIVE_INFINITY);
    for (let l = L - 1; l >= 0; l--) {
      const bytes =
        cost.model.layers[l]!.paramBytes + (cost.kvPrefix[l + 1]! - cost.kvPrefix[l]!) * perToken;
      if (!(bytes > 0)) usable = false;
      this.remainingBytes[l] = this.remainingBytes[l + 1]! + bytes;
      let fastest = Number.POSITIVE_INFINITY;
      for (let t = 0; t < T; t++) {
        const p = tables.decodePrefix[t]!;
        const ns = p[l + 1]! - p[l]!;
        fastest = Math.min(fastest, ns);
        this.ratio[t] = Math.min(this.ratio[t]!, ns / bytes);
      }
      rest += fastest;
      this.perLayer[l] = rest + this.constants;
    }
    this.usable = usable;
    this.byRatio = Array.from({ length: T }, (_, t) => t).sort(
      (x, y) => this.ratio[x]! - this.ratio[y]!,
    );
    const { embeddingBytes, headBytes, tiedEmbedding } = cost.model;
    this.embeddingBytes = embeddingBytes;
    this.headBytes = tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes;
  }

  /**
   * Lower bound on the layer time still to come after layers [0, ℓ), with `free[t]`
   * devices of each type still free; ∞ when they cannot hold what is left. `placed` says
   * whether stage 0 (and so the embedding) is already placed.
   */
  work(l: number, free: ArrayLike<number>, placed: boolean): number {
    if (l >= this.perLayer.length - 1) return 0;
    const simple = this.perLayer[l]! - this.constants;
    let need = this.remainingBytes[l]! + this.headBytes + (placed ? 0 : this.embeddingBytes);
    let capacity = 0;
    for (let t = 0; t < this.tables.types; t++) capacity += free[t]! * this.tables.memoryBytes[t]!;
    if (capacity < need) return Number.POSITIVE_INFINITY;
    if (!this.usable) return simple;
    need = this.remainingBytes[l]!;
    let ns = 0;
    for (const t of this.byRatio) {
      if (need <= 0) break;
      const take = Math.min(need, free[t]! * this.tables.memoryBytes[t]!);
      ns += take * this.ratio[t]!;
      need -= take;
    }
    // Shaved so float rounding in the ratios can never push the bound above the truth.
    return Math.max(simple, ns * (1 - 1e-9));
  }

  /** Lower bound on all decode time still to come: layers plus the head, a hop and the return. */
  total(l: number, work: number, placed: boolean): number {
    if (l >= this.perLayer.length - 1) return 0;
    return work + (placed ? this.constants : this.startConstants);
  }
}
