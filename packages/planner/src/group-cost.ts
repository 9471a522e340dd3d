/**
 * What a tensor-parallel stage costs: a layer range run by a group of devices (rank 0, the
 * leader, takes the stage's input, runs the embedding and the LM head, and sends its output).
 *
 * - Shares: each member's weight is its measured speed (layers per second at one row); its
 *   KV heads and feed-forward columns are dealt from the weights as `splitTensors` deals them
 *   (`tensorShares`), uneven when the members differ. A member's fraction of a layer is its
 *   part of the layer's weights: attention (q, k, v, o) by its KV heads, the feed-forward
 *   (gate, up, down) by its columns; its time on the layer is that fraction of its own
 *   measured layer time (decode reads every weight once: time follows bytes).
 * - Decode of a micro-batch of b rows, per layer: the slowest member's share, plus two
 *   segment runs (attention, feed-forward: `TensorCosts.segmentRunMs` each), plus two
 *   all-reduces of [b, dim] fp32 predicted by `predictAllReduceMs` over the group's slowest
 *   link (longest one-way latency, least bandwidth of any pair), with the algorithm
 *   `fasterAllReduce` picks for the decode vector. Once per step: the slowest member's fixed
 *   stage cost, and on the leader the embedding (stage 0) and the head (last stage).
 * - Prefill of one chunk: likewise, with the chunk's [tokens, dim] in each all-reduce.
 * - Memory per member: its fraction of the layers' weights, its KV heads' share of the
 *   layers' KV cache, and on the leader the embedding and head (as a single device's stage).
 *
 * Every per-layer term is whole nanoseconds, so prefix sums are exact (see units.ts).
 */

import {
  dealtCounts,
  InvalidArgumentError,
  TENSOR_COLUMN_GRANULARITY,
  TensorSplitError,
  tensorShares,
} from '@swarmbee/core';
import {
  type AllReduceAlgorithmName,
  fasterAllReduce,
  predictAllReduceMs,
} from './all-reduce-cost.js';
import type { CostModel } from './cost-model.js';
import { chooseHead, type HeadMode } from './group-head.js';
import { msToNs, NS_PER_MS, NS_PER_S } from './units.js';

/** The runtime's costs a tensor-parallel stage adds, measured on this machine's loopback. */
export interface TensorCosts {
  /** Fixed cost of one segment run on a member, ms; a layer is two. Default 0.09 (scripts/tp-costs.ts, 110M preset). */
  segmentRunMs: number;
  /**
   * CPU a member spends per all-reduce part it sends or receives, ms. Default 0.12: half the
   * loopback exchange of two members (`npm run bench -- parallel --parts allreduce`, 240 µs).
   */
  allReducePartMs: number;
}

export const DEFAULT_TENSOR_COSTS: Readonly<TensorCosts> = {
  segmentRunMs: 0.09,
  allReducePartMs: 0.12,
};

/** How one group splits its layers, and the link its sums cross. */
export interface GroupSplit {
  /** Members' weights by rank: layers per second at one row (their measured speed). */
  weights: number[];
  /** Each member's fraction of a layer's weights, and of its own time on the layer, by rank. */
  fractions: number[];
  /** Each member's fraction of the KV heads (and of the KV cache), by rank. */
  kvFractions: number[];
  /** Each member's fraction of the vocabulary when the LM head is split; undefined when it cannot be. */
  vocabFractions?: number[];
  /** The group's slowest link: longest one-way latency (ns), least bandwidth (bytes/s). */
  latencyNs: number;
  bytesPerSecond: number;
}

/** What every stage of one group at one micro-batch size shares. */
export interface PreparedGroup {
  /** Its cache key: the group, its weights and algorithm, the micro-batch size. */
  key: string;
  split: GroupSplit;
  decode: Float64Array;
  prefill: Float64Array;
  algorithm: AllReduceAlgorithmName;
  overheadDecodeNs: number;
  overheadPrefillNs: number;
}

/** Where a group stage sits: its layers [start, end), first / last, the micro-batch, the sequences its KV holds. */
export interface GroupStagePlace {
  start: number;
  end: number;
  first: boolean;
  last: boolean;
  batch: number;
  sequences: number;
}

export interface GroupStageCost {
  decodeNs: number;
  prefillNs: number;
  /** Bytes each member holds, by rank. */
  memberMemoryBytes: number[];
  allReduce: AllReduceAlgorithmName;
  /** Where the LM head runs (last stage): on the leader, or split by vocabulary. */
  head: HeadMode;
  /** The head on one position, after the prompt's last chunk (last stage; else 0). */
  headFirstTokenNs: number;
}

/**
 * What a plan made elsewhere fixes about a group (`TensorStagePlan`): its members' weights and
 * its all-reduce. Absent, the group is priced as the planner would run it: weights from the
 * profile's speeds, the algorithm `fasterAllReduce` picks.
 */
export interface GroupHow {
  weights?: readonly number[];
  allReduce?: AllReduceAlgorithmName;
  /** Where the LM head runs; absent, the faster of the two that fit (group-head.ts). */
  head?: HeadMode;
}

const key = (group: readonly number[], weights?: readonly number[]) =>
  weights ? `${group.join(',')}:${weights.join(',')}` : group.join(',');
const howKey = (group: readonly number[], how?: GroupHow) =>
  `${key(group, how?.weights)}/${how?.allReduce ?? ''}`;

export class GroupCosts {
  private readonly splits = new Map<string, GroupSplit | null>();
  private readonly prefixCache = new Map<string, Float64Array>();
  private readonly nsCache = new Map<string, number>();
  private readonly preparedCache = new Map<string, PreparedGroup>();
  private readonly allReduceCache = new Map<
    string,
    { algorithm: AllReduceAlgorithmName; ns: number }
  >();

  constructor(
    readonly cost: CostModel,
    readonly tensor: Readonly<TensorCosts>,
  ) {
    for (const [what, ms] of Object.entries(tensor))
      if (!(Number.isFinite(ms) && ms >= 0))
        throw new InvalidArgumentError(`tensorCosts.${what} must be a finite ms >= 0, got ${ms}`);
  }

  /** Most members a group may have for this model: its KV heads (0 when it cannot split). */
  get maxDegree(): number {
    const shape = this.cost.model.tensorShape;
    if (!shape || (this.cost.workload.kvDtype ?? 'float32') !== 'float32') return 0;
    return shape.nKvHeads;
  }

  /**
   * The split of a group (devices by rank), by `weights` or else the members' speeds;
   * undefined when the model cannot be split so.
   */
  split(group: readonly number[], weights?: readonly number[]): GroupSplit | undefined {
    const k = key(group, weights);
    let split = this.splits.get(k);
    if (split === undefined) {
      split = this.makeSplit(group, weights) ?? null;
      this.splits.set(k, split);
    }
    return split ?? undefined;
  }

  /** The all-reduce a group runs on a vector of `rows` × dim: its algorithm and ns. */
  allReduce(
    group: readonly number[],
    rows: number,
    algorithm?: AllReduceAlgorithmName,
  ): { algorithm: AllReduceAlgorithmName; ns: number } {
    return this.allReduceElements(group, rows * this.cost.model.dim, algorithm);
  }

  /** The all-reduce a group runs on `elements` fp32: its algorithm and ns. */
  allReduceElements(
    group: readonly number[],
    elements: number,
    algorithm?: AllReduceAlgorithmName,
  ): { algorithm: AllReduceAlgorithmName; ns: number } {
    const k = `${key(group)}/${elements}/${algorithm ?? 'faster'}`;
    let found = this.allReduceCache.get(k);
    if (!found) {
      const split = this.required(group);
      const input = {
        members: group.length,
        elements,
        oneWayMs: split.latencyNs / NS_PER_MS,
        bytesPerSecond: split.bytesPerSecond,
        perPartMs: this.tensor.allReducePartMs,
      };
      if (algorithm) found = { algorithm, ns: msToNs(predictAllReduceMs({ ...input, algorithm })) };
      else {
        const best = fasterAllReduce(input);
        found = { algorithm: best.algorithm, ns: msToNs(best.ms) };
      }
      this.allReduceCache.set(k, found);
    }
    return found;
  }

  /** A time computed once per key (the head's parts, group-head.ts). */
  cachedNs(key: string, make: () => number): number {
    let ns = this.nsCache.get(key);
    if (ns === undefined) {
      ns = make();
      this.nsCache.set(key, ns);
    }
    return ns;
  }

  /** Decode time of layers [0, l) by the group at micro-batch b, by l. */
  decodePrefixNs(group: readonly number[], batch: number, how?: GroupHow): Float64Array {
    return this.groupPrefix('decode', group, batch, how);
  }

  /** One prefill chunk through layers [0, l) by the group, by l (its sums use decode's algorithm at b). */
  prefillPrefixNs(group: readonly number[], batch: number, how?: GroupHow): Float64Array {
    return this.groupPrefix('prefill', group, batch, how);
  }

  /**
   * A group stage's times and memory: one decode step of a micro-batch of `batch` rows, one
   * prefill chunk (its all-reduces use the algorithm decode at `batch` uses), and what each
   * member holds with KV for `sequences` full contexts, by rank.
   */
  stage(group: readonly number[], at: GroupStagePlace, how?: GroupHow): GroupStageCost {
    const { start, end, first, last, batch, sequences } = at;
    const { cost } = this;
    const p = this.prepared(group, batch, how);
    const leader = group[0]!;
    let decodeNs = p.decode[end]! - p.decode[start]! + p.overheadDecodeNs;
    if (first) decodeNs += cost.embeddingDecodeNs(leader, batch);
    let prefillNs = p.prefill[end]! - p.prefill[start]! + p.overheadPrefillNs;
    if (first) prefillNs += cost.embeddingPrefillNs(leader);
    const weights = cost.paramPrefix[end]! - cost.paramPrefix[start]!;
    const kv = cost.stageKvBytes(start, end, sequences);
    const { fractions, kvFractions } = p.split;
    const layers = group.map((_, rank) => fractions[rank]! * weights + kvFractions[rank]! * kv);
    const head = chooseHead(this, group, p, { first, last, batch }, layers, how);
    return {
      decodeNs: decodeNs + head.decodeNs,
      prefillNs,
      memberMemoryBytes: head.memoryBytes,
      allReduce: p.algorithm,
      head: head.mode,
      headFirstTokenNs: head.firstTokenNs,
    };
  }

  /** What every stage of a group at micro-batch b shares, computed once (the search asks often). */
  private prepared(group: readonly number[], batch: number, how?: GroupHow): PreparedGroup {
    const key = `${howKey(group, how)}/${batch}`;
    let p = this.preparedCache.get(key);
    if (!p) {
      p = {
        key,
        split: this.required(group, how?.weights),
        decode: this.decodePrefixNs(group, batch, how),
        prefill: this.prefillPrefixNs(group, batch, how),
        algorithm: this.allReduce(group, batch, how?.allReduce).algorithm,
        overheadDecodeNs: this.slowestOverheadNs(group, batch),
        overheadPrefillNs: this.slowestOverheadNs(group, 1),
      };
      this.preparedCache.set(key, p);
    }
    return p;
  }

  private slowestOverheadNs(group: readonly number[], batch: number): number {
    return Math.max(...group.map((d) => this.cost.stageOverheadNs(d, batch)));
  }

  private groupPrefix(
    phase: 'decode' | 'prefill',
    group: readonly number[],
    batch: number,
    how?: GroupHow,
  ): Float64Array {
    const k = `${phase}/${howKey(group, how)}/${batch}`;
    let prefix = this.prefixCache.get(k);
    if (!prefix) {
      const decode = phase === 'decode';
      const { algorithm, ns } = this.allReduce(group, batch, how?.allReduce);
      const members = group.map((d) =>
        decode ? this.cost.decodePrefixNs(d, batch) : this.cost.prefillPrefixNs(d),
      );
      const sum = decode ? ns : this.allReduce(group, this.cost.prefillChunkLength, algorithm).ns;
      prefix = this.prefix(group, how?.weights, members, sum);
      this.prefixCache.set(k, prefix);
    }
    return prefix;
  }

  private prefix(
    group: readonly number[],
    weights: readonly number[] | undefined,
    members: readonly Float64Array[],
    allReduceNs: number,
  ): Float64Array {
    const { fractions } = this.required(group, weights);
    const n = this.cost.nLayers;
    const fixed = 2 * (msToNs(this.tensor.segmentRunMs) + allReduceNs);
    const prefix = new Float64Array(n + 1);
    for (let l = 0; l < n; l++) {
      let slowest = 0;
      members.forEach((p, rank) => {
        slowest = Math.max(slowest, fractions[rank]! * (p[l + 1]! - p[l]!));
      });
      prefix[l + 1] = prefix[l]! + Math.round(slowest) + fixed;
    }
    return prefix;
  }

  private required(group: readonly number[], weights?: readonly number[]): GroupSplit {
    const split = this.split(group, weights);
    if (!split)
      throw new TensorSplitError(
        `${this.cost.model.name} cannot be split across ${group.length} devices ` +
          `(at most ${this.maxDegree}, distinct, and a model with a tensor shape)`,
      );
    return split;
  }

  private makeSplit(group: readonly number[], given?: readonly number[]): GroupSplit | undefined {
    const { cost } = this;
    const shape = cost.model.tensorShape;
    if (!shape || group.length < 2 || group.length > this.maxDegree) return undefined;
    if (new Set(group).size !== group.length) return undefined;
    if (
      given &&
      (given.length !== group.length || !given.every((w) => w > 0 && w < Number.POSITIVE_INFINITY))
    )
      throw new TensorSplitError(
        `a group of ${group.length} needs as many positive weights, got ${given.join(', ')}`,
      );
    const L = cost.nLayers;
    const weights = given
      ? [...given]
      : group.map((d) => NS_PER_S / Math.max(1, cost.decodePrefixNs(d, 1)[L]!));
    const shares = tensorShares(shape, weights);
    if (!shares) return undefined;
    // Attention: q and o (nHeads × headDim each), k and v (nKvHeads × headDim each), all
    // dealt by KV head; feed-forward: gate, up and down, by column. dim is common to both.
    const attention = 2 * (shape.nHeads + shape.nKvHeads) * shape.headDim;
    const feedForward = 3 * shape.hiddenDim;
    const fractions = shares.map(
      (s) =>
        (attention * (s.kvHeads / shape.nKvHeads) + feedForward * (s.columns / shape.hiddenDim)) /
        (attention + feedForward),
    );
    let latencyNs = 0;
    let bytesPerSecond = Number.POSITIVE_INFINITY;
    for (const a of group) {
      for (const b of group) {
        if (a === b) continue;
        latencyNs = Math.max(latencyNs, cost.latencyNs(a, b));
        bytesPerSecond = Math.min(bytesPerSecond, cost.bandwidthBytesPerS(a, b));
      }
    }
    const { vocabSize } = cost.model;
    const vocab = dealtCounts(vocabSize, TENSOR_COLUMN_GRANULARITY, weights);
    return {
      weights,
      fractions,
      kvFractions: shares.map((s) => s.kvHeads / shape.nKvHeads),
      ...(vocab ? { vocabFractions: vocab.map((v) => v / vocabSize) } : {}),
      latencyNs,
      bytesPerSecond,
    };
  }
}
