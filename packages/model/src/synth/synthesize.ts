/** `swarmbee model synth`: a model dir with seeded random Llama weights. */
import { InvalidArgumentError, type LlamaConfig } from '@swarmbee/core';
import { type LlamaModelDir, writeModelDir } from '../model-dir.js';
import type { ProgressFn } from '../progress.js';
import { mulberry32, streamSeed, uniform } from './random.js';

import { synthVocab } from './vocab.js';

export interface SynthOptions {
  config: LlamaConfig;
  seed: number;
  out: string;
  name?: string;
  preset?: string;
  progress?: ProgressFn;
}

/** Smallest vocabulary a synthetic model can have: specials, bytes and printable ASCII. */
export const MIN_SYNTH_VOCAB = 3 + 256 + 95;
/** Largest: the synthetic word pieces run out beyond this. */
export const MAX_SYNTH_VOCAB = 1024;

export function checkConfig(config: LlamaConfig): void {
  const positive = [
    'dim',
    'hiddenDim',
    'nLayers',
    'nHeads',
    'nKvHeads',
    'vocabSize',
    'maxSeqLen',
  ] as const;
  for (const key of positive) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) {
      throw new InvalidArgumentError(`${key} must be a positive integer, got ${config[key]}`);
    }
  }
  if (config.dim % config.nHeads !== 0)
    throw new InvalidArgumentError(
      `dim ${config.dim} must be a multiple of heads ${config.nHeads}`,
    );
  if ((config.dim / config.nHeads) % 2 !== 0)
    throw new InvalidArgumentError(`head size ${config.dim / config.nHeads} must be even for RoPE`);
  if (config.nHeads % config.nKvHeads !== 0) {
    throw new InvalidArgumentError(
      `heads ${config.nHeads} must be a multiple of kv-heads ${config.nKvHeads}`,
    );
  }
}

export async function synthesizeModel(options: SynthOptions): Promise<LlamaModelDir> {
  const { config, seed } = options;
  checkConfig(config);
  if (config.vocabSize < MIN_SYNTH_VOCAB || config.vocabSize > MAX_SYNTH_VOCAB) {
    throw new InvalidArgumentError(
      `vocab must be between ${MIN_SYNTH_VOCAB} and ${MAX_SYNTH_VOCAB} for a synthetic tokenizer, got ${config.vocabSize}`,
    );
  }
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new InvalidArgumentError(`seed must be a non-negative integer, got ${seed}`);
  const source: { kind: 'synthetic'; seed: number; preset?: string } = { kind: 'synthetic', seed };
  if (options.preset) source.preset = options.preset;
  return writeModelDir(options.out, {
    name: options.name ?? `synthetic-${options.preset ?? 'custom'}-seed${seed}`,
    config,
    source,
    tokenizer: synthVocab(config.vocabSize),
    progress: options.progress,
    tensors: (spec) => {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      // Norm gains of one, linear weights scaled by fan-in so activations stay O(1).
      if (spec.shape.length === 1) return new Float32Array(count).fill(1);
      const fanIn = spec.shape[1]!;
      return uniform(count, Math.sqrt(3 / fanIn), mulberry32(streamSeed(seed, spec.name)));
    },
  });
}
