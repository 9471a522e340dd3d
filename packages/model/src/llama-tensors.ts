/**
 * The canonical tensor list of a Llama model dir, in storage order. Importers
 * write these, the shard builder reads them; nothing else names weights.
 */
import { headDim, type LlamaConfig } from '@swarmbee/core';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Layer index, or 'embedding' / 'head' for the tensors outside the layer stack. */
  part: number | 'embedding' | 'head';
}

export const layerTensor = {
  attnNorm: (layer: number) => `layers.${layer}.attn_norm`,
  wqkv: (layer: number) => `layers.${layer}.wqkv`,
  /** q/k/v biases, rows as `wqkv`'s; only when `config.qkvBias` (Qwen2). */
  bqkv: (layer: number) => `layers.${layer}.bqkv`,
  /** Per-head query and key norms, [headDim]; only when `config.qkNorm` (Qwen3, Gemma 3). */
  qNorm: (layer: number) => `layers.${layer}.q_norm`,
  kNorm: (layer: number) => `layers.${layer}.k_norm`,
  wo: (layer: number) => `layers.${layer}.wo`,
  /** Norm of the attention output before its residual add; only when `config.postNorms` (Gemma 3). */
  attnPostNorm: (layer: number) => `layers.${layer}.attn_post_norm`,
  ffnNorm: (layer: number) => `layers.${layer}.ffn_norm`,
  w13: (layer: number) => `layers.${layer}.w13`,
  w2: (layer: number) => `layers.${layer}.w2`,
  /** Norm of the feed-forward output before its residual add; only when `config.postNorms`. */
  ffnPostNorm: (layer: number) => `layers.${layer}.ffn_post_norm`,
} as const;

/**
 * Every norm weight is the multiplier of the normalised value. Gemma's checkpoints
 * store `w` for a `(1 + w)` multiplier; its importer stores `1 + w` (the float32 sum
 * transformers computes), so the graph needs no second norm style.
 */

export const TOKEN_EMBEDDING = 'tok_embeddings';
export const FINAL_NORM = 'norm';
export const CLASSIFIER = 'output';

export function llamaTensorSpecs(config: LlamaConfig): TensorSpec[] {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize } = config;
  const hd = headDim(config);
  const specs: TensorSpec[] = [
    { name: TOKEN_EMBEDDING, shape: [vocabSize, dim], part: 'embedding' },
  ];
  for (let layer = 0; layer < nLayers; layer++) {
    specs.push(
      { name: layerTensor.attnNorm(layer), shape: [dim], part: layer },
      { name: layerTensor.wqkv(layer), shape: [(nHeads + 2 * nKvHeads) * hd, dim], part: layer },
    );
    if (config.qkvBias)
      specs.push({
        name: layerTensor.bqkv(layer),
        shape: [(nHeads + 2 * nKvHeads) * hd],
        part: layer,
      });
    if (config.qkNorm)
      specs.push(
        { name: layerTensor.qNorm(layer), shape: [hd], part: layer },
        { name: layerTensor.kNorm(layer), shape: [hd], part: layer },
      );
    specs.push({ name: layerTensor.wo(layer), shape: [dim, nHeads * hd], part: layer });
    if (config.postNorms)
      specs.push({ name: layerTensor.attnPostNorm(layer), shape: [dim], part: layer });
    specs.push(
      { name: layerTensor.ffnNorm(layer), shape: [dim], part: layer },
      { name: layerTensor.w13(layer), shape: [2 * hiddenDim, dim], part: layer },
      { name: layerTensor.w2(layer), shape: [dim, hiddenDim], part: layer },
    );
    if (config.postNorms)
      specs.push({ name: layerTensor.ffnPostNorm(layer), shape: [dim], part: layer });
  }
  specs.push({ name: FINAL_NORM, shape: [dim], part: 'head' });
  if (!config.sharedClassifier)
    specs.push({ name: CLASSIFIER, shape: [vocabSize, dim], part: 'head' });
  return specs;
}

/**
 * Moves q/k rows from llama2.c's interleaved RoPE pairs (2j, 2j+1) to Hugging
 * Face's rotate-half halves (j, j + hd/2) within each head — the permutation HF's
 * conversion script applies. Attention scores are unchanged because q and k move
 * together. `rows` is [heads * hd, cols], row-major.
 */
export function interleavedToRotateHalf(
  rows: Float32Array,
  heads: number,
  hd: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(rows.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const from = (h * hd + 2 * j + p) * cols;
        out.set(rows.subarray(from, from + cols), (h * hd + p * half + j) * cols);
      }
    }
  }
  return out;
}

/** The inverse of {@link interleavedToRotateHalf}: back to llama2.c's layout. */
export function rotateHalfToInterleaved(
  rows: Float32Array,
  heads: number,
  hd: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(rows.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const from = (h * hd + p * half + j) * cols;
        out.set(rows.subarray(from, from + cols), (h * hd + 2 * j + p) * cols);
      }
    }
  }
  return out;
}
