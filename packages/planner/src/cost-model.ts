/**
 * The cost model every planner optimizes and every test checks against. Given stages
 * (device, contiguous layers), a micro-batch size b and M micro-batches in flight:
 *
 * - a stage's decode step: its layers' interpolated times at (b, decode context), plus
 *   the embedding on stage 0 and the head on the last stage;
 * - a hop: half the round trip plus bytes over bandwidth. Activations cross as fp32
 *   [b, tokens, dim] plus framing; token ids go coordinator → stage 0 and last stage →
 *   coordinator; the coordinator → stage 0 hop also carries the coordinator's own work per
 *   micro-batch (taking tokens, streaming them, composing the next batch: its profile's
 *   `coordinator` step times), which one event loop does before the frame goes out;
 * - time per output token (TPOT): one trip around the loop, coordinator → stages in turn
 *   → coordinator, every compute and every hop summed;
 * - throughput: the loop is a closed cycle of single-server resources (stages, and links
 *   busy for bytes/bandwidth) plus pure delays (half round trips). With M micro-batches
 *   its steady rate is min(M / TPOT, 1 / busiest resource) micro-batches per unit time,
 *   exactly, for deterministic times;
 * - time to first token (TTFT): the prompt is cut into K = ⌈P / chunk⌉ equal chunks that
 *   pipeline through the stages (a flow shop of identical jobs), so TTFT = every resource
 *   once + (K − 1) × the busiest resource, then the head on the last position and the
 *   token's trip to the coordinator. Chunks are timed at the mean context they see.
 *
 * Times are integer nanoseconds so sums are exact (see units.ts).
 */
import {
  ACTIVATION_BYTES_PER_ELEMENT,
  arenaCapacity,
  type ClusterProfile,
  COORDINATOR_NODE,
  type DeviceProfile,
  DeviceUnknownError,
  FRAME_OVERHEAD_BYTES,
  gridAtRisk,
  KV_DTYPE_BYTES,
  layerKvBytes,
  type ModelSummary,
  type PrefillTimingGrid,
  TOKEN_WIRE_BYTES,
} from '@swarmbee/core';
import { buildLinkTable, type LinkTable, resolveWorkload, validateCluster } from './cluster.js';
import { interpolateGrid } from './grid.js';
import { DEFAULT_TENSOR_COSTS, GroupCosts, type TensorCosts } from './group-cost.js';
import { type Evaluation, evaluatePlan, type StageAssignment } from './plan-evaluation.js';
import type { Workload } from './types.js';
import { msToNs, NS_PER_S } from './units.js';

export class CostModel {
  readonly cluster: ClusterProfile;
  readonly model: ModelSummary;
  readonly devices: readonly DeviceProfile[];
  readonly workload: Workload;
  /** Node index of the coordinator in link lookups. */
  readonly coordinator: number;
  /** Prefill chunks a prompt is cut into, and each chunk's length in tokens. */
  readonly prefillChunks: number;
  readonly prefillChunkLength: number;
  /**
   * Bytes of weights, and KV bytes per token of the workload's context, of layers [0, l),
   * by l. The KV is what the engine's arena holds for that context (`arenaCapacity`
   * positions, rounded up to its growth step), spread over the context's tokens. A
   * sliding-window layer's KV stops at its window, so its share per context token is
   * smaller when the context is longer than the window.
   */
  readonly paramPrefix: Float64Array;
  readonly kvPrefix: Float64Array;
  /** What tensor-parallel stages (device groups) cost: see group-cost.ts. */
  readonly groups: GroupCosts;

  private readonly links: LinkTable;
  private readonly byName: Map<string, number>;
  private readonly decodeCache = new Map<string, Float64Array>();
  private readonly prefillCache = new Map<number, Float64Array>();

  constructor(
    cluster: ClusterProfile,
    workload?: Partial<Workload>,
    tensor: Partial<TensorCosts> = {},
  ) {
    validateCluster(cluster);
    this.cluster = cluster;
    this.model = cluster.model;
    this.devices = cluster.devices;
    this.workload = resolveWorkload(cluster, workload);
    this.links = buildLinkTable(cluster);
    this.coordinator = cluster.devices.length;
    this.byName = new Map(cluster.devices.map((d, i) => [d.name, i]));
    this.groups = new GroupCosts(this, { ...DEFAULT_TENSOR_COSTS, ...tensor });
    const { promptTokens, prefillChunkTokens } = this.workload;
    this.prefillChunks = Math.ceil(promptTokens / prefillChunkTokens);
    this.prefillChunkLength = Math.ceil(promptTokens / this.prefillChunks);
    const n = this.model.nLayers;
    this.paramPrefix = new Float64Array(n + 1);
    this.kvPrefix = new Float64Array(n + 1);
    // The model records fp32 KV bytes; an fp16 cache holds the same elements in half.
    const kvScale = KV_DTYPE_BYTES[this.workload.kvDtype ?? 'float32'] / KV_DTYPE_BYTES.float32;
    // A sequence of `context` tokens sits in an arena of `positions` (the engine's growth step).
    const context = this.workload.contextTokens;
    const positions = arenaCapacity(context, this.model.maxSeqLen);
    for (let l = 0; l < n; l++) {
      const cost = this.model.layers[l]!;
      this.paramPrefix[l + 1] = this.paramPrefix[l]! + cost.paramBytes;
      this.kvPrefix[l + 1] =
        this.kvPrefix[l]! + (kvScale * layerKvBytes(cost, positions)) / context;
    }
  }

  get nLayers(): number {
    return this.model.nLayers;
  }

  /** Index of the device with this name; an unknown name throws DeviceUnknownError. */
  deviceIndex(name: string): number {
    const index = this.byName.get(name);
    if (index === undefined) {
      const known = this.devices.map((d) => d.name).join(', ');
      throw new DeviceUnknownError(`no device named ${name} in the cluster (devices: ${known})`);
    }
    return index;
  }

  nodeName(node: number): string {
    return node === this.coordinator ? COORDINATOR_NODE : this.devices[node]!.name;
  }

  /** Decode time of layers [0, l) on a device, by l, for micro-batch b. */
  decodePrefixNs(device: number, batch: number): Float64Array {
    const key = `${device}/${batch}`;
    let prefix = this.decodeCache.get(key);
    if (!prefix) {
      const { layers } = this.devices[device]!.timing;
      const context = this.workload.decodeContextTokens;
      prefix = this.prefix(layers.length, (l) => {
        const g = layers[l]!.decode;
        return msToNs(
          interpolateGrid(
            g.batchSizes,
            g.contextTokens,
            gridAtRisk(g, this.workload.risk),
            batch,
            context,
          ),
        );
      });
      this.decodeCache.set(key, prefix);
    }
    return prefix;
  }

  /** Time of one prefill chunk through layers [0, l) on a device, by l. */
  prefillPrefixNs(device: number): Float64Array {
    let prefix = this.prefillCache.get(device);
    if (!prefix) {
      const { layers } = this.devices[device]!.timing;
      const chunk = this.prefillChunkLength;
      const context = this.meanChunkContext();
      prefix = this.prefix(layers.length, (l) => {
        const g = layers[l]!.prefill;
        return msToNs(
          interpolateGrid(
            g.chunkTokens,
            g.contextTokens,
            gridAtRisk(g, this.workload.risk),
            chunk,
            context,
          ),
        );
      });
      this.prefillCache.set(device, prefix);
    }
    return prefix;
  }

  embeddingDecodeNs(device: number, batch: number): number {
    const g = this.devices[device]!.timing.embedding.decode;
    return msToNs(
      interpolateGrid(g.batchSizes, g.contextTokens, gridAtRisk(g, this.workload.risk), batch, 0),
    );
  }

  embeddingPrefillNs(device: number): number {
    const g = this.devices[device]!.timing.embedding.prefill;
    return msToNs(
      interpolateGrid(
        g.chunkTokens,
        g.contextTokens,
        gridAtRisk(g, this.workload.risk),
        this.prefillChunkLength,
        0,
      ),
    );
  }

  headDecodeNs(device: number, batch: number): number {
    const g = this.devices[device]!.timing.head.decode;
    const context = this.workload.decodeContextTokens;
    return msToNs(
      interpolateGrid(
        g.batchSizes,
        g.contextTokens,
        gridAtRisk(g, this.workload.risk),
        batch,
        context,
      ),
    );
  }

  /** The runtime's fixed cost of one stage step on a device (0 when not profiled). */
  stageOverheadNs(device: number, batch: number): number {
    const g = this.devices[device]!.timing.stageOverhead?.decode;
    return g
      ? msToNs(
          interpolateGrid(
            g.batchSizes,
            g.contextTokens,
            gridAtRisk(g, this.workload.risk),
            batch,
            0,
          ),
        )
      : 0;
  }

  /**
   * The coordinator's own work per micro-batch of `batch` rows (its profile's step times,
   * linear between measured sizes, extended by the last slope); 0 when not profiled. It sits
   * on the coordinator → stage 0 hop: one event loop does it before the frame goes out.
   */
  coordinatorStepNs(batch: number): number {
    const timing = this.cluster.coordinator;
    if (!timing || timing.batchSizes.length === 0) return 0;
    const { batchSizes: xs, stepMs: ys } = timing;
    const n = xs.length;
    if (n === 1 || batch <= xs[0]!) return msToNs(ys[0]!);
    let i = 1;
    while (i < n - 1 && xs[i]! < batch) i++;
    const slope = (ys[i]! - ys[i - 1]!) / (xs[i]! - xs[i - 1]!);
    return msToNs(Math.max(0, ys[i - 1]! + slope * (batch - xs[i - 1]!)));
  }

  latencyNs(from: number, to: number): number {
    return this.links.latencyNs[from * this.links.nodes + to]!;
  }

  bandwidthBytesPerS(from: number, to: number): number {
    return this.links.bandwidthBytesPerS[from * this.links.nodes + to]!;
  }

  /** How long a link is busy carrying `bytes` (bytes over bandwidth), in ns. */
  occupancyNs(from: number, to: number, bytes: number): number {
    return Math.round((bytes / this.bandwidthBytesPerS(from, to)) * NS_PER_S);
  }

  /** A frame of token ids: `tokens` × (id + position) plus framing. */
  tokenFrameBytes(tokens: number): number {
    return tokens * TOKEN_WIRE_BYTES + FRAME_OVERHEAD_BYTES;
  }

  /** A frame of hidden states: fp32 [tokens, dim] plus framing. */
  activationFrameBytes(tokens: number): number {
    return tokens * this.model.dim * ACTIVATION_BYTES_PER_ELEMENT + FRAME_OVERHEAD_BYTES;
  }

  /**
   * Bytes a stage holds: its layers' weights, their KV cache for `sequences` full
   * contexts, the embedding on stage 0 and the head on the last stage (a tied head
   * on a device that also holds the embedding shares its matrix).
   */
  stageMemoryBytes(
    layerStart: number,
    layerEnd: number,
    first: boolean,
    last: boolean,
    sequences: number,
  ): number {
    const { embeddingBytes, headBytes, tiedEmbedding } = this.model;
    const weights = this.paramPrefix[layerEnd]! - this.paramPrefix[layerStart]!;
    const kv = this.stageKvBytes(layerStart, layerEnd, sequences);
    let extra = first ? embeddingBytes : 0;
    if (last) extra += first && tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : headBytes;
    return weights + kv + extra;
  }

  /**
   * KV-cache bytes layers [layerStart, layerEnd) hold for `sequences` full contexts, each
   * in the arena capacity the engine grows to for that context (so a stage given this
   * budget admits exactly `sequences` of them).
   */
  stageKvBytes(layerStart: number, layerEnd: number, sequences: number): number {
    const kvPerToken = this.kvPrefix[layerEnd]! - this.kvPrefix[layerStart]!;
    return kvPerToken * this.workload.contextTokens * sequences;
  }

  /** One decode step of micro-batch b on a stage. */
  stageDecodeNs(
    device: number,
    start: number,
    end: number,
    first: boolean,
    last: boolean,
    batch: number,
  ): number {
    const prefix = this.decodePrefixNs(device, batch);
    let ns = prefix[end]! - prefix[start]! + this.stageOverheadNs(device, batch);
    if (first) ns += this.embeddingDecodeNs(device, batch);
    if (last) ns += this.headDecodeNs(device, batch);
    return ns;
  }

  /** One prefill chunk on a stage (the head runs once, after the last chunk: see TTFT). */
  stagePrefillNs(device: number, start: number, end: number, first: boolean): number {
    const prefix = this.prefillPrefixNs(device);
    return (
      prefix[end]! -
      prefix[start]! +
      this.stageOverheadNs(device, 1) +
      (first ? this.embeddingPrefillNs(device) : 0)
    );
  }

  /**
   * One prefill chunk of `tokens` after `context` cached tokens on a stage, at exactly that
   * shape (stagePrefillNs times the workload's mean chunk): what live metrics are judged by.
   */
  stagePrefillChunkNs(
    device: number,
    start: number,
    end: number,
    first: boolean,
    tokens: number,
    context: number,
  ): number {
    const { timing } = this.devices[device]!;
    const risk = this.workload.risk;
    const at = (g: PrefillTimingGrid, ctx: number) =>
      msToNs(interpolateGrid(g.chunkTokens, g.contextTokens, gridAtRisk(g, risk), tokens, ctx));
    let ns = this.stageOverheadNs(device, 1);
    for (let l = start; l < end; l++) {
      const layer = timing.layers.length === 1 ? timing.layers[0]! : timing.layers[l]!;
      ns += at(layer.prefill, context);
    }
    if (first) ns += at(timing.embedding.prefill, 0);
    return ns;
  }

  /** Predicts everything about a plan; `overBytes > 0` marks a plan that does not fit. */
  evaluate(stages: readonly StageAssignment[], batch: number, inFlight: number): Evaluation {
    return evaluatePlan(this, stages, batch, inFlight);
  }

  private meanChunkContext(): number {
    return (this.prefillChunkLength * (this.prefillChunks - 1)) / 2;
  }

  private prefix(entries: number, nsOfEntry: (entry: number) => number): Float64Array {
    const n = this.model.nLayers;
    const prefix = new Float64Array(n + 1);
    const shared = entries === 1 ? nsOfEntry(0) : 0;
    for (let l = 0; l < n; l++) {
      prefix[l + 1] = prefix[l]! + (entries === 1 ? shared : nsOfEntry(l));
    }
    return prefix;
  }
}
