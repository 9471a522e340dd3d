/**
 * transformers' reference encodings and chat renderings of real tokenizers
 * (packages/model/test/fixtures/tokenizers.json, made by
 * scripts/fixtures/tokenizer_reference.py with the versions it records), and where
 * each tokenizer's files are: the npm devDependencies' `models/` dirs, and the Llama 2
 * tokenizer of ../shared/models.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../../../../test/helpers/shared-models.js';

export interface RecordedEncoding {
  text: string;
  ids: number[];
  ids_with_special_tokens: number[];
  decoded: string;
  decoded_with_special_tokens: string;
}

export interface RecordedChat {
  conversation: string;
  messages: { role: string; content: string }[];
  options: { enable_thinking?: boolean };
  /** 'feature': the fixture's own template, not the tokenizer's. */
  template?: 'feature';
  ids?: number[];
  text?: string;
  error?: string;
}

export interface RecordedTokenizer {
  /** The tokenizer's dir, relative to the repository root. */
  files: string;
  bos_token: string | null;
  eos_token: string | null;
  encodings: RecordedEncoding[];
  chats: RecordedChat[];
}

export interface TokenizerFixtures {
  made_by: string;
  transformers: string;
  tokenizers: string;
  jinja2: string;
  feature_template: string;
  tokenizers_recorded: Record<string, RecordedTokenizer>;
}

export const TOKENIZER_FIXTURES = JSON.parse(
  readFileSync(new URL('../fixtures/tokenizers.json', import.meta.url), 'utf8'),
) as TokenizerFixtures;

/** The embedding rows of each tokenizer's models (config.json vocab_size). */
export const MODEL_VOCAB: Record<string, number> = {
  llama3: 128_256,
  qwen3: 151_936,
  gemma3: 262_144,
  llama2: 32_000,
};

export function tokenizerDir(recorded: RecordedTokenizer): string {
  return resolve(REPO_ROOT, recorded.files);
}
