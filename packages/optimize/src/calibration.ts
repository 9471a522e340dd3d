/**
 * Layer redundancy from calibration text, after ShortGPT's Block Influence (Men et al.,
 * 2024): a layer whose output hidden states point where its inputs did changes little,
 * so BI_l = 1 − mean over tokens of cos(h_l, h_{l+1}) is low for layers that can go.
 * For runs of consecutive layers the same measure spans the run: 1 − cos(h_l, h_{l+n})
 * (the angular-distance criterion of Gromov et al., "The Unreasonable Ineffectiveness of
 * the Deeper Layers"). Hidden states come from the engine's LayerStateChain: one-layer
 * shards built `headless`, so the last layer too ends with its hidden state, while the
 * serving shards' IO stays as it is.
 */
import { LayerStateChain, type StageOptions } from '@swarmbee/engine';
import {
  type LlamaModelDir,
  type LlamaShardGraph,
  type ProgressFn,
  readTensor,
  TOKEN_EMBEDDING,
  VariantBuilder,
} from '@swarmbee/model';
import type { Corpus } from './corpus.js';

export interface LayerSimilarity {
  /**
   * `cosine[i][j]` (i < j ≤ n): mean cosine similarity between the hidden state entering
   * layer i and the one entering layer j (j = n: leaving the last layer), over every
   * corpus token but each window's first (BOS, whose states are outliers).
   */
  cosine: number[][];
  /** Tokens averaged over. */
  tokens: number;
}

/** ShortGPT's Block Influence of every layer: 1 − cos(h_l, h_{l+1}). Lower means more redundant. */
export function blockInfluence(similarity: LayerSimilarity): number[] {
  const n = similarity.cosine.length - 1;
  return Array.from({ length: n }, (_, l) => 1 - similarity.cosine[l]![l + 1]!);
}

/** The same measure across `length` consecutive layers from `start`: 1 − cos(h_start, h_start+length). */
export function runInfluence(similarity: LayerSimilarity, start: number, length: number): number {
  return 1 - similarity.cosine[start]![start + length]!;
}

/** Runs the corpus through the model layer by layer and averages hidden-state similarities. */
export async function measureLayerSimilarity(
  dir: LlamaModelDir,
  corpus: Corpus,
  options: { stage?: StageOptions; progress?: ProgressFn } = {},
): Promise<LayerSimilarity> {
  const { dim, nLayers } = dir.manifest.config;
  const builder = new VariantBuilder(dir);
  const shards: LlamaShardGraph[] = [];
  for (let l = 0; l < nLayers; l++) {
    shards.push(await builder.shard({}, { start: l, end: l + 1 }, { headless: true }));
  }
  const chain = await LayerStateChain.open(shards, options.stage);
  const sums = Array.from({ length: nLayers + 1 }, () => new Float64Array(nLayers + 1));
  let tokens = 0;
  try {
    const embedding = await readTensor(dir, TOKEN_EMBEDDING);
    for (const [w, window] of corpus.windows.entries()) {
      const T = window.length;
      const entering = new Float32Array(T * dim);
      for (const [t, id] of window.entries()) {
        entering.set(embedding.subarray(id * dim, (id + 1) * dim), t * dim);
      }
      accumulate([entering, ...(await chain.run(window))], dim, T, sums);
      tokens += T - 1;
      options.progress?.({
        phase: 'calibrate',
        done: w + 1,
        total: corpus.windows.length,
        unit: 'steps',
      });
    }
  } finally {
    await chain.close();
  }
  const cosine = sums.map((row) => Array.from(row, (v) => v / tokens));
  return { cosine, tokens };
}

/** Adds cos(h_i[t], h_j[t]) for every pair i < j and every token but the first. */
function accumulate(hidden: Float32Array[], dim: number, T: number, sums: Float64Array[]): void {
  const n = hidden.length;
  const norms = hidden.map((h) => {
    const out = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += h[t * dim + k]! ** 2;
      out[t] = Math.sqrt(s) || 1;
    }
    return out;
  });
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = hidden[i]!;
      const b = hidden[j]!;
      let sum = 0;
      for (let t = 1; t < T; t++) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += a[t * dim + k]! * b[t * dim + k]!;
        sum += dot / (norms[i]![t]! * norms[j]![t]!);
      }
      sums[i]![j]! += sum;
    }
  }
}
