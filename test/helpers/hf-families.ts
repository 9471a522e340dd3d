/**
 * The Hugging Face family fixtures of test/fixtures/hf-families: tiny checkpoints made
 * by transformers' own classes, with transformers' greedy ids and logits
 * (scripts/fixtures/hf_families.py, transformers 5.18.0, torch 2.13 CPU, fp32, eager).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pipeline } from '@swarmbee/engine';

export const HF_FAMILIES_DIR = join(import.meta.dirname, '..', 'fixtures', 'hf-families');

/** Every fixture, by directory name. */
export const HF_FAMILY_FIXTURES = [
  'llama-gqa-headdim-tied',
  'llama-linear-untied',
  'llama-dynamic',
  'llama3-rope',
  'qwen2-bias',
  'qwen3-qknorm',
  'mistral-window',
  'phi3-window',
  'phi3-longrope',
  'gemma3-local-global',
  'gemma3-pattern6',
] as const;

export interface HfFamilyReference {
  script: string;
  transformers: string;
  torch: string;
  architecture: string;
  promptIds: number[];
  /** Prompt then the greedy ids transformers generated. */
  ids: number[];
  vocab: number;
  minGreedyMargin: number;
  /** [rows, vocab]: row p is the logits that predicted ids[p + 1]. */
  logits: Float32Array;
}

export async function readFamilyReference(
  name: string,
  root: string = HF_FAMILIES_DIR,
): Promise<HfFamilyReference> {
  const dir = join(root, name);
  const meta = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Omit<
    HfFamilyReference,
    'logits'
  >;
  const bytes = await readFile(join(dir, 'reference-logits.f32'));
  const logits = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
  );
  return { ...meta, logits };
}

export interface GreedyRun {
  /** Prompt plus generated ids. */
  ids: number[];
  /** Logits of every position but the last, [rows, vocab]. */
  logits: Float32Array;
}

/**
 * Prefills the prompt in one chunk (logits at every position), then decodes `steps`
 * tokens one at a time with greedy sampling, as transformers' generate does.
 */
export async function runGreedy(
  pipeline: Pipeline,
  promptIds: number[],
  steps: number,
  vocab: number,
  seqId = 'fixture',
): Promise<GreedyRun> {
  const greedy = { temperature: 0, topK: 0, topP: 1 };
  const ids = [...promptIds];
  const rows = promptIds.length + steps - 1;
  const logits = new Float32Array(rows * vocab);
  const prefill = await pipeline.step({
    rows: [{ seqId, start: 0, count: promptIds.length, sampling: greedy }],
    tokens: BigInt64Array.from(promptIds, BigInt),
    logits: 'all',
  });
  logits.set(prefill.logits!);
  ids.push(prefill.tokens[0]!);
  for (let step = 1; step < steps; step++) {
    const position = ids.length - 1;
    const result = await pipeline.step({
      rows: [{ seqId, start: position, count: 1, sampling: greedy }],
      tokens: BigInt64Array.of(BigInt(ids[position]!)),
      logits: 'last',
    });
    logits.set(result.logits!, position * vocab);
    ids.push(result.tokens[0]!);
  }
  await pipeline.release([seqId]);
  return { ids, logits };
}

/** Largest |a − b| over two logit tables, and the row where it is. */
export function maxLogitError(
  actual: Float32Array,
  expected: Float32Array,
  vocab: number,
): { error: number; row: number } {
  let error = 0;
  let row = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d > error || Number.isNaN(d)) {
      error = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
      row = Math.floor(i / vocab);
    }
  }
  return { error, row };
}
