/**
 * The analytic cost model behind presets: an operation takes as long as the slower of
 * moving its bytes through memory and doing its arithmetic, plus a fixed per-operation
 * overhead (session run, kernel launches):
 *
 *   time = max(bytes moved / memory bandwidth, flops / compute rate) + overhead
 *
 * Decode is memory-bound on every device we target (weights are read once per step
 * for the whole micro-batch), prefill turns compute-bound as chunks grow. The model is
 * sampled onto the same grids a measured profile carries, so the planner sees presets
 * and measurements through one interpolating cost model.
 */
import {
  type DecodeTimingGrid,
  type DeviceTiming,
  layerKvBytes,
  type ModelSummary,
  type OpTiming,
  type PrefillTimingGrid,
} from '@swarmbee/core';

/** The published figures a device estimate is built from. */
export interface DeviceSpec {
  /** Bytes available for weights plus KV cache, after the OS and runtime. */
  memoryBytes: number;
  /** Sustained memory bandwidth (STREAM-like), bytes per second. */
  memoryBandwidthBytesPerS: number;
  /** Sustained fp32 arithmetic rate (HPL/GEMM-like), floating-point operations per second. */
  computeFlopsPerS: number;
  /** Fixed cost of running one operation (a layer, the embedding, the head), in ms. */
  opOverheadMs: number;
}

/** Grid points presets are sampled at; dense where times bend, sparse where they are linear. */
export interface TimingSamples {
  batchSizes: number[];
  decodeContextTokens: number[];
  chunkTokens: number[];
  prefillContextTokens: number[];
}

export const DEFAULT_TIMING_SAMPLES: Readonly<TimingSamples> = {
  batchSizes: [1, 2, 4, 8, 16, 32, 64],
  decodeContextTokens: [0, 256, 1024, 4096, 16384],
  chunkTokens: [1, 8, 32, 128, 512, 2048],
  prefillContextTokens: [0, 1024, 4096, 16384],
};

function opMs(spec: DeviceSpec, bytes: number, flops: number): number {
  const memoryMs = (bytes / spec.memoryBandwidthBytesPerS) * 1000;
  const computeMs = (flops / spec.computeFlopsPerS) * 1000;
  return Math.max(memoryMs, computeMs) + spec.opOverheadMs;
}

function layerParams(model: ModelSummary, layer: number): number {
  return (model.layers[layer]?.paramBytes ?? 0) / model.weightBytesPerParam;
}

/**
 * One decode step of one layer: weights read once, each sequence reads its past KV and
 * writes one token's; attention costs 4·context·dim flops per token (QKᵀ and AV).
 */
export function analyticLayerDecodeMs(
  spec: DeviceSpec,
  model: ModelSummary,
  layer: number,
  batch: number,
  contextTokens: number,
): number {
  const cost = model.layers[layer];
  const kv = cost ? layerKvBytes(cost, contextTokens + 1) : 0;
  const attended = Math.min(contextTokens, cost?.kvWindowTokens ?? contextTokens);
  const bytes = (cost?.paramBytes ?? 0) + batch * kv;
  const flops = batch * (2 * layerParams(model, layer) + 4 * attended * model.dim);
  return opMs(spec, bytes, flops);
}

/** One prefill chunk of one layer: causal attention over the past plus the chunk itself. */
export function analyticLayerPrefillMs(
  spec: DeviceSpec,
  model: ModelSummary,
  layer: number,
  chunkTokens: number,
  contextTokens: number,
): number {
  const cost = model.layers[layer];
  const kv = cost ? layerKvBytes(cost, contextTokens + chunkTokens) : 0;
  const bytes = (cost?.paramBytes ?? 0) + kv;
  const attendedPerToken = Math.min(
    contextTokens + (chunkTokens + 1) / 2,
    cost?.kvWindowTokens ?? Number.POSITIVE_INFINITY,
  );
  const flops = chunkTokens * (2 * layerParams(model, layer) + 4 * attendedPerToken * model.dim);
  return opMs(spec, bytes, flops);
}

/** The embedding is a row gather: bytes only. */
export function analyticEmbeddingMs(spec: DeviceSpec, model: ModelSummary, tokens: number): number {
  return opMs(spec, 2 * tokens * model.dim * model.weightBytesPerParam, 0);
}

/** Final norm and the vocabulary projection of one position per sequence. */
export function analyticHeadDecodeMs(spec: DeviceSpec, model: ModelSummary, batch: number): number {
  const params = model.vocabSize * model.dim;
  return opMs(spec, params * model.weightBytesPerParam, 2 * batch * params);
}

function decodeGrid(
  samples: TimingSamples,
  at: (batch: number, context: number) => number,
): DecodeTimingGrid {
  return {
    batchSizes: [...samples.batchSizes],
    contextTokens: [...samples.decodeContextTokens],
    ms: samples.batchSizes.map((b) => samples.decodeContextTokens.map((c) => at(b, c))),
  };
}

function prefillGrid(
  samples: TimingSamples,
  at: (chunk: number, context: number) => number,
): PrefillTimingGrid {
  return {
    chunkTokens: [...samples.chunkTokens],
    contextTokens: [...samples.prefillContextTokens],
    ms: samples.chunkTokens.map((t) => samples.prefillContextTokens.map((c) => at(t, c))),
  };
}

function sameCost(model: ModelSummary): boolean {
  const first = model.layers[0];
  return model.layers.every(
    (l) => l.paramBytes === first?.paramBytes && l.kvBytesPerToken === first?.kvBytesPerToken,
  );
}

/** Samples the analytic model onto timing grids: the profile a preset stands for. */
export function analyticTiming(
  spec: DeviceSpec,
  model: ModelSummary,
  samples: TimingSamples = DEFAULT_TIMING_SAMPLES,
): DeviceTiming {
  const layerTiming = (layer: number): OpTiming => ({
    decode: decodeGrid(samples, (b, c) => analyticLayerDecodeMs(spec, model, layer, b, c)),
    prefill: prefillGrid(samples, (t, c) => analyticLayerPrefillMs(spec, model, layer, t, c)),
  });
  // Identical layers need one entry; a pruned or mixed model gets one per layer.
  const layers = sameCost(model)
    ? [layerTiming(0)]
    : model.layers.map((_, layer) => layerTiming(layer));
  return {
    layers,
    embedding: {
      decode: decodeGrid(samples, (b) => analyticEmbeddingMs(spec, model, b)),
      prefill: prefillGrid(samples, (t) => analyticEmbeddingMs(spec, model, t)),
    },
    head: { decode: decodeGrid(samples, (b) => analyticHeadDecodeMs(spec, model, b)) },
  };
}
