import { join } from 'node:path';
import { TokenizerMissingError } from '@swarmbee/core';
import type { ModelDir } from '../model-dir.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { Llama2cTokenizer } from './llama2c-tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

/** The model dir's tokenizer; models without one can still run from token ids. */
export async function loadTokenizer(dir: ModelDir): Promise<Tokenizer> {
  const ref = dir.manifest.tokenizer;
  if (!ref) {
    throw new TokenizerMissingError(
      `model ${dir.manifest.name} (${dir.path}) has no tokenizer; pass token ids (--prompt-ids) instead of text`,
    );
  }
  const { vocabSize } = dir.manifest.config;
  switch (ref.kind) {
    case 'llama2c':
      return Llama2cTokenizer.load(join(dir.path, ref.file), vocabSize);
    case 'hf':
      return HfTokenizer.load(dir.path, ref, vocabSize);
  }
}
