/**
 * What the planner knows about a cluster: the model's costs, each device's memory
 * and forward times, and each link's round-trip time and bandwidth. Workers measure
 * these (per-layer timings by running layers with onnxruntime); presets estimate
 * them from published figures. Everything here is plain JSON so a profile can be
 * saved, diffed and replayed.
 */

import { headDim, type LlamaConfig } from './decoder-config.js';
import type { LayerCost, ModelManifest } from './manifest.js';
import { DTYPE_BYTES } from './tensor.js';

/** Link endpoint name of the coordinator, which sends tokens to stage 0 and receives sampled ids. */
export const COORDINATOR_NODE = 'coordinator';

/** Bytes per element of a hidden state crossing a link (activations travel as fp32). */
export const ACTIVATION_BYTES_PER_ELEMENT = 4;

/** Framing around every forward frame on the wire (message header, sequence ids, tensor header). */
export const FRAME_OVERHEAD_BYTES = 256;

/** Bytes per token of a token-id frame (int32 id plus int32 position). */
export const TOKEN_WIRE_BYTES = 8;

/**
 * Decode forward times on a rectangular grid: `ms[i][j]` is the time in milliseconds of
 * one decode step for a micro-batch of `batchSizes[i]` sequences, each with
 * `contextTokens[j]` tokens already in its KV cache. Axes ascend strictly.
 */
export interface DecodeTimingGrid {
  batchSizes: number[];
  contextTokens: number[];
  /** Median of the repeated samples at each point. */
  ms: number[][];
  /** Spread of the samples at each point: their 10th and 90th percentiles. Absent in presets. */
  p10Ms?: number[][];
  p90Ms?: number[][];
}

/**
 * Prefill forward times on a rectangular grid: `ms[i][j]` is the time in milliseconds
 * to run a chunk of `chunkTokens[i]` prompt tokens of one sequence whose KV cache
 * already holds `contextTokens[j]` tokens. Axes ascend strictly.
 */
export interface PrefillTimingGrid {
  chunkTokens: number[];
  contextTokens: number[];
  /** Median of the repeated samples at each point. */
  ms: number[][];
  /** Spread of the samples at each point: their 10th and 90th percentiles. Absent in presets. */
  p10Ms?: number[][];
  p90Ms?: number[][];
}

/**
 * Which of a profile's timings a plan is judged at: `p50` the medians, `p90` the 90th
 * percentiles (a plan that must hold on a bad run). Grids without a spread give their medians.
 */
export type TimingRisk = 'p50' | 'p90';

/** A timing grid's times at a risk level. */
export function gridAtRisk(
  grid: { ms: number[][]; p90Ms?: number[][] },
  risk: TimingRisk = 'p50',
): number[][] {
  return risk === 'p90' ? (grid.p90Ms ?? grid.ms) : grid.ms;
}

/** Measured (or estimated) times of one operation: a decoder layer or the embedding. */
export interface OpTiming {
  decode: DecodeTimingGrid;
  prefill: PrefillTimingGrid;
}

/**
 * The LM head (final norm, projection to the vocabulary, sampling) only ever runs on
 * the last position of each sequence — during prefill too, where the shard picks the
 * last hidden state first — so decode times at (batch, context) describe it fully.
 */
export interface HeadTiming {
  decode: DecodeTimingGrid;
}

/** Forward times of one device for one model. */
export interface DeviceTiming {
  /**
   * One entry per model layer, in layer order; or a single entry that stands for every
   * layer (Llama layers share one shape, so measuring one is often enough).
   */
  layers: OpTiming[];
  embedding: OpTiming;
  head: HeadTiming;
  /**
   * What the runtime adds around each stage step, whatever the layers: handing the batch
   * to the engine's thread and back, assembling inputs. Charged once per stage per step.
   * Absent in presets (zero).
   */
  stageOverhead?: HeadTiming;
}

export interface DeviceProfile {
  /** Unique worker name; never {@link COORDINATOR_NODE}. */
  name: string;
  /** Bytes available for weights plus KV cache (after the OS, runtime and buffers). */
  memoryBytes: number;
  timing: DeviceTiming;
  /** True when the numbers come from a preset's published figures, not a measurement. */
  estimate: boolean;
  /** Where the numbers come from (a preset's one-line source note, or the measuring runtime). */
  source?: string;
  /** The software that measured it, as the worker reported when it joined; absent for presets. */
  runtime?: DeviceRuntime;
}

/** A worker's runtime: what its timing depends on besides its hardware. */
export interface DeviceRuntime {
  /** Node.js, `process.version` on the worker. */
  node: string;
  /** onnxruntime-node on the worker (its native binding's version). */
  onnxruntime: string;
}

/** One direction of a network path. A link given in one direction only is taken as symmetric. */
export interface LinkProfile {
  /** Device name or {@link COORDINATOR_NODE}. */
  from: string;
  to: string;
  /** Round-trip time in milliseconds; a message's one-way delay is half of it. */
  rttMs: number;
  /** Sustained payload bandwidth in bytes per second. */
  bandwidthBytesPerS: number;
}

/** What the planner needs to know about a model, taken from its manifest. */
export interface ModelSummary {
  name: string;
  modelHash: string;
  nLayers: number;
  /** Hidden size: a hidden state is [batch, tokens, dim] fp32 on the wire. */
  dim: number;
  vocabSize: number;
  /** Longest context the model supports, in tokens. */
  maxSeqLen: number;
  /** Bytes per weight element (4 for fp32); turns weight bytes into parameter counts. */
  weightBytesPerParam: number;
  /** Per layer: weight bytes and KV-cache bytes per token of context. */
  layers: LayerCost[];
  /** Token embedding bytes, held by stage 0. */
  embeddingBytes: number;
  /**
   * Final norm plus LM head bytes, held by the last stage. When the head is tied to the
   * embedding this counts a full copy of it: a last stage other than stage 0 must hold one.
   */
  headBytes: number;
  /**
   * The head reuses the embedding matrix. A single device that is both first and last
   * then holds the matrix once: `embeddingBytes + headBytes - embeddingBytes`.
   */
  tiedEmbedding: boolean;
  /**
   * How a layer splits across a tensor-parallel group (KV heads and their query heads,
   * feed-forward columns). Absent when the model's layers cannot be split (ONNX decoders,
   * quantized weights, post-norms): the planner then makes pipelines only.
   */
  tensorShape?: TensorShape;
}

/** The shape a tensor-parallel split deals out: heads by KV group, feed-forward columns. */
export interface TensorShape {
  nHeads: number;
  nKvHeads: number;
  /** Size of one attention head. */
  headDim: number;
  /** Feed-forward inner width (the columns of gate and up). */
  hiddenDim: number;
}

/**
 * Versions of the software that produced a profile, so stale measurements can be spotted:
 * SwarmBee and the Node.js of the process that assembled it. Each measured device records its
 * own runtime (`DeviceProfile.runtime`): onnxruntime runs on the workers, not the coordinator.
 */
export interface RuntimeVersions {
  swarmbee: string;
  node?: string;
}

/**
 * The coordinator's own work per micro-batch that comes back from the pipeline — taking its
 * tokens, stop checks, streaming them to clients, composing and sending the next micro-batch —
 * measured on its event loop while it serves.
 */
export interface CoordinatorTiming {
  /** Rows of the measured micro-batches, ascending. */
  batchSizes: number[];
  /** Mean time of that work per micro-batch, ms, by `batchSizes`. */
  stepMs: number[];
}

export interface ClusterProfile {
  model: ModelSummary;
  devices: DeviceProfile[];
  /** Links between every pair of devices and between each device and the coordinator. */
  links: LinkProfile[];
  /** The coordinator's own work per micro-batch; absent until it has served (then taken as 0). */
  coordinator?: CoordinatorTiming;
  /** ISO 8601 time the profile was taken. */
  createdAt: string;
  versions: RuntimeVersions;
}

/** The model summary the planner needs, read from a model dir's manifest. */
export function modelSummaryFromManifest(manifest: ModelManifest): ModelSummary {
  // A Llama model dir's weights are fp32 unless quantized; quantized layers already
  // count their real (smaller) bytes in `layers`, which is what memory planning needs.
  const dtype = manifest.architecture === 'onnx-decoder' ? manifest.config.weightDtype : 'float32';
  const summary: ModelSummary = {
    name: manifest.name,
    modelHash: manifest.modelHash,
    nLayers: manifest.config.nLayers,
    dim: manifest.config.dim,
    vocabSize: manifest.config.vocabSize,
    maxSeqLen: manifest.config.maxSeqLen,
    weightBytesPerParam: DTYPE_BYTES[dtype],
    layers: manifest.layers.map((layer) => ({ ...layer })),
    embeddingBytes: manifest.embeddingBytes,
    headBytes: manifest.headBytes,
    tiedEmbedding:
      manifest.architecture === 'onnx-decoder'
        ? manifest.decoder.tiedEmbedding
        : manifest.config.sharedClassifier,
  };
  if (manifest.architecture === 'llama') {
    const { config } = manifest;
    // What tensor-slice-shard.ts refuses, the planner never plans: post-norms, quantized layers.
    const splittable = !config.postNorms && manifest.layers.every((l) => !l.precision);
    if (splittable) summary.tensorShape = llamaTensorShape(config);
  }
  return summary;
}

/** The tensor-parallel shape of a Llama-family config. */
export function llamaTensorShape(config: LlamaConfig): TensorShape {
  const { nHeads, nKvHeads, hiddenDim } = config;
  return { nHeads, nKvHeads, headDim: headDim(config), hiddenDim };
}
