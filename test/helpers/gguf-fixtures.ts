/**
 * GGUF test inputs: the files llama.cpp made in ../shared/models/gguf (with llama.cpp's own
 * greedy outputs), and the small fixtures committed in test/fixtures/gguf with the scripts
 * that made them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, SHARED_MODELS } from './shared-models.js';

export const GGUF_SHARED_DIR = join(SHARED_MODELS, 'gguf');
export const GGUF_FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'gguf');

export const SHARED_GGUF = {
  stories260kF32: join(GGUF_SHARED_DIR, 'stories260K-f32.gguf'),
  stories260kF16: join(GGUF_SHARED_DIR, 'stories260K-f16.gguf'),
  synthqF32: join(GGUF_SHARED_DIR, 'synthq-f32.gguf'),
  synthqQ8_0: join(GGUF_SHARED_DIR, 'synthq-q8_0.gguf'),
  synthqQ4_0: join(GGUF_SHARED_DIR, 'synthq-q4_0.gguf'),
  synthqQ4KM: join(GGUF_SHARED_DIR, 'synthq-q4_k_m.gguf'),
  synthqQ5KM: join(GGUF_SHARED_DIR, 'synthq-q5_k_m.gguf'),
  synthqQ6K: join(GGUF_SHARED_DIR, 'synthq-q6_k.gguf'),
  greedy: join(GGUF_SHARED_DIR, 'llamacpp_greedy.json'),
};

/** llama.cpp's prompt ids and greedy ids (llama-server, temperature 0) per file and prompt. */
export interface LlamaCppGreedy {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  text: string;
}

export function llamaCppGreedy(file: string): LlamaCppGreedy[] {
  const all = JSON.parse(readFileSync(SHARED_GGUF.greedy, 'utf8')) as Record<
    string,
    LlamaCppGreedy[]
  >;
  const runs = all[file];
  if (!runs) throw new Error(`llamacpp_greedy.json has no runs for ${file}`);
  return runs;
}
