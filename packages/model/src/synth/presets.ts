import { type LlamaConfig, STORIES110M_SHAPE } from '@swarmbee/core';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA } from '../llama2c/checkpoint.js';

export interface SynthPreset {
  description: string;
  config: LlamaConfig;
}

const llama2cShape = (
  shape: Omit<LlamaConfig, 'normEps' | 'ropeTheta' | 'sharedClassifier'>,
): LlamaConfig => ({
  ...shape,
  normEps: LLAMA2C_NORM_EPS,
  ropeTheta: LLAMA2C_ROPE_THETA,
  sharedClassifier: true,
});

/** Shapes for synthetic (random-weight) models. */
export const SYNTH_PRESETS = {
  tiny: {
    description:
      'stories260K shape (dim 64, 5 layers, GQA 8/4 heads, vocab 512): the quick start default',
    config: llama2cShape({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 512,
    }),
  },
  small: {
    description: 'stories15M shape with a 512-token vocab (dim 288, 6 layers, 6 heads)',
    config: llama2cShape({
      dim: 288,
      hiddenDim: 768,
      nLayers: 6,
      nHeads: 6,
      nKvHeads: 6,
      vocabSize: 512,
      maxSeqLen: 256,
    }),
  },
  stories110m: {
    description:
      'stories110M shape with a 512-token vocab (dim 768, hidden 2048, 12 layers, 12 heads): the benchmark model',
    config: llama2cShape(STORIES110M_SHAPE),
  },
} satisfies Record<string, SynthPreset>;

export type SynthPresetName = keyof typeof SYNTH_PRESETS;

/** The preset the quick start runs when no model is given. */
export const DEFAULT_PRESET: SynthPresetName = 'tiny';
/** The benchmark model. */
export const BENCH_PRESET: SynthPresetName = 'stories110m';
/** Seed of the embedded default model, so every machine runs the same weights. */
export const DEFAULT_SYNTH_SEED = 42;
