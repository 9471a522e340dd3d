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
  wo: (layer: number) => `layers.${layer}.wo`,
  ffnNorm: (layer: number) => `layers.${layer}.ffn_norm`,
  w13: (layer: number) => `layers.${layer}.w13`,
  w2: (layer: number) => `layers.${layer}.w2`,
} as const;

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
    specs.push(
      { name: layerTensor.wo(layer), shape: [dim, nHeads * hd], part: layer },
      { name: layerTensor.ffnNorm(layer), shape: [dim], part: layer },
      { name: layerTensor.w13(layer), shape: [2 * hiddenDim, dim], part: layer },
      { name: layerTensor.w2(layer), shape: [dim, hiddenDim], part: layer },
    );
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
