/**
 * The read-only test models in ../shared/models. Tests that need them fail
 * under CI=true when they are missing, and skip with a clear message elsewhere.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_MODELS =
  process.env.SWARMBEE_SHARED_MODELS ?? resolve(REPO_ROOT, '..', 'shared', 'models');

export const STORIES260K = {
  dir: join(SHARED_MODELS, 'stories260K'),
  checkpoint: join(SHARED_MODELS, 'stories260K', 'stories260K.bin'),
  tokenizer: join(SHARED_MODELS, 'stories260K', 'tok512.bin'),
  refNoPrompt: join(SHARED_MODELS, 'stories260K', 'ref_run_t0_n200_noprompt.txt'),
  refOnceUponATime: join(SHARED_MODELS, 'stories260K', 'ref_run_t0_n64_once_upon_a_time.txt'),
  refLogits: join(SHARED_MODELS, 'stories260K', 'ref_logits_once_upon_a_time_n64.json'),
};

export const TINY_GPT2 = {
  dir: join(SHARED_MODELS, 'tiny-random-gpt2-fp32'),
  onnx: join(SHARED_MODELS, 'tiny-random-gpt2-fp32', 'past.onnx'),
};

/** onnxruntime-genai's model-builder Llama export (fp16, external data, MultiHeadAttention). */
export const TINY_GENAI_LLAMA = {
  dir: join(SHARED_MODELS, 'tiny-random-LlamaForCausalLM-fp16'),
  onnx: join(SHARED_MODELS, 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'),
  /** The shared README's example prompt. */
  prompt: [1, 9038, 2501, 263, 931],
};

export interface Skippable {
  plan(count: number, comment?: string): void;
  fail(message: string): unknown;
}

/**
 * True when `path` exists. Otherwise fails the test under CI=true, or skips it
 * with a message naming the missing path, and returns false.
 */
export function haveSharedModel(t: Skippable, path: string): boolean {
  if (existsSync(path)) return true;
  const message = `test model ${path} is missing (expected ../shared/models beside the repository)`;
  if (process.env.CI === 'true') t.fail(`${message}; CI needs it`);
  else t.plan(0, `${message}; skipping`);
  return false;
}
