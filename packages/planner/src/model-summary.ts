/**
 * A model summary from a Llama config alone, counted the way a model dir's manifest
 * counts (fp32): for planning a model before it is imported, and for benchmarks.
 */
import {
  headDim,
  kvBytesPerTokenPerLayer,
  type LlamaConfig,
  llamaTensorShape,
  type ModelSummary,
} from '@swarmbee/core';

const FP32_BYTES = 4;

export function llamaModelSummary(
  config: LlamaConfig,
  name: string,
  modelHash = `config:${name}`,
): ModelSummary {
  const { dim, hiddenDim, nLayers, nKvHeads, vocabSize } = config;
  const kvDim = nKvHeads * headDim(config);
  // q and o are dim×dim, k and v are kvDim×dim, the SwiGLU FFN has three matrices, plus two norms.
  const layerParams = 2 * dim * dim + 2 * dim * kvDim + 3 * dim * hiddenDim + 2 * dim;
  const embeddingBytes = vocabSize * dim * FP32_BYTES;
  return {
    name,
    modelHash,
    nLayers,
    dim,
    vocabSize,
    maxSeqLen: config.maxSeqLen,
    weightBytesPerParam: FP32_BYTES,
    layers: Array.from({ length: nLayers }, () => ({
      paramBytes: layerParams * FP32_BYTES,
      kvBytesPerToken: kvBytesPerTokenPerLayer(config),
    })),
    embeddingBytes,
    // Final norm, plus the head matrix — a full copy when tied (see ModelSummary.headBytes).
    headBytes: dim * FP32_BYTES + embeddingBytes,
    tiedEmbedding: config.sharedClassifier,
    tensorShape: llamaTensorShape(config),
  };
}

/** Llama-2-7B's shape (32 layers, dim 4096): 27 GB at fp32. */
export const LLAMA2_7B_CONFIG: Readonly<LlamaConfig> = {
  dim: 4096,
  hiddenDim: 11008,
  nLayers: 32,
  nHeads: 32,
  nKvHeads: 32,
  vocabSize: 32000,
  maxSeqLen: 4096,
  normEps: 1e-5,
  ropeTheta: 10000,
  sharedClassifier: false,
};

/** TinyLlama-1.1B's shape (22 layers, dim 2048, grouped-query attention): 4.4 GB at fp32. */
export const TINYLLAMA_1B_CONFIG: Readonly<LlamaConfig> = {
  dim: 2048,
  hiddenDim: 5632,
  nLayers: 22,
  nHeads: 32,
  nKvHeads: 4,
  vocabSize: 32000,
  maxSeqLen: 2048,
  normEps: 1e-5,
  ropeTheta: 10000,
  sharedClassifier: false,
};
