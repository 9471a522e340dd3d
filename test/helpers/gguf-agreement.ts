/**
 * How SwarmBee's run of a GGUF compares with llama.cpp's and with the fp64 reference
 * (test/fixtures/gguf/synthq-fp64.json, made by make_fp64_reference.py): free-running greedy
 * ids against llama.cpp's, and teacher-forced — SwarmBee's argmax at every position of
 * llama.cpp's own sequence — with each disagreement checked against the fp64 logits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate, LocalPipeline } from '@swarmbee/engine';
import type { ModelDir } from '@swarmbee/model';
import { GGUF_FIXTURES_DIR, llamaCppGreedy } from './gguf-fixtures.js';

export interface Fp64Run {
  prompt: string;
  /** Prompt ids followed by llama.cpp's greedy ids. */
  ids: number[];
  /** Per generated position: the fp64 argmax, its gap to llama.cpp's choice, the best tokens. */
  fp64Argmax: number[];
  gapToLlamaCpp: number[];
  top: [number, number][][];
}

export interface Fp64File {
  logits: { ids: number[]; vocab: number; float32: string };
  runs: Fp64Run[];
}

export function fp64Reference(file: string): Fp64File {
  const all = JSON.parse(readFileSync(join(GGUF_FIXTURES_DIR, 'synthq-fp64.json'), 'utf8')) as {
    files: Record<string, Fp64File>;
  };
  const entry = all.files[file];
  if (!entry) throw new Error(`synthq-fp64.json has no ${file}`);
  return entry;
}

export function fp64Logits(file: string): { ids: number[]; logits: Float32Array } {
  const { logits } = fp64Reference(file);
  const bytes = Buffer.from(logits.float32, 'base64');
  return {
    ids: logits.ids,
    logits: new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    ),
  };
}

/** Logits of every position of `ids`, prefilled at once. */
export async function teacherForcedLogits(
  dir: ModelDir,
  ids: number[],
  stages = 1,
): Promise<Float32Array> {
  const pipeline = await LocalPipeline.create(dir, { stages });
  try {
    const result = await pipeline.step({
      rows: [{ seqId: 'teacher', start: 0, count: ids.length }],
      tokens: BigInt64Array.from(ids, BigInt),
      logits: 'all',
    });
    return result.logits!;
  } finally {
    await pipeline.close();
  }
}

export interface AgreementRow {
  file: string;
  /** Free-running: tokens equal to llama.cpp's before the first difference, per prompt. */
  firstDivergence: number[];
  /** Teacher-forced positions where SwarmBee's argmax is llama.cpp's token. */
  agree: number;
  positions: number;
  /** Disagreements where llama.cpp's and SwarmBee's tokens are within `noise` fp64 logits of each other. */
  explained: number;
  /** llama.cpp's own largest fp64 gap on this file: how far its 8-bit activations move its choices. */
  noise: number;
  /** Positions where SwarmBee's argmax is the fp64 argmax. */
  agreeFp64: number;
}

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

export async function agreementWithLlamaCpp(file: string, dir: ModelDir): Promise<AgreementRow> {
  const runs = llamaCppGreedy(file);
  const reference = fp64Reference(file);
  const noise = Math.max(...reference.runs.flatMap((r) => r.gapToLlamaCpp));
  const pipeline = await LocalPipeline.create(dir, { stages: 1 });
  let free: number[][];
  try {
    const results = await generate(
      pipeline,
      runs.map((run) => ({
        promptIds: run.prompt_ids,
        steps: run.prompt_ids.length + run.greedy_ids.length - 1,
        sampling: GREEDY,
        stopIds: [],
      })),
    );
    free = results.map((r) => r.ids.slice(r.promptTokens));
  } finally {
    await pipeline.close();
  }
  const row: AgreementRow = {
    file,
    firstDivergence: runs.map((run, i) => {
      const at = run.greedy_ids.findIndex((id, j) => free[i]![j] !== id);
      return at < 0 ? run.greedy_ids.length : at;
    }),
    agree: 0,
    positions: 0,
    explained: 0,
    noise,
    agreeFp64: 0,
  };
  for (const [r, run] of reference.runs.entries()) {
    const logits = await teacherForcedLogits(dir, run.ids);
    const vocab = logits.length / run.ids.length;
    const start = runs[r]!.prompt_ids.length - 1;
    for (let p = 0; p < run.fp64Argmax.length; p++) {
      const row0 = (start + p) * vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits[row0 + v]! > logits[row0 + best]!) best = v;
      const chosen = run.ids[start + p + 1]!;
      row.positions++;
      if (best === run.fp64Argmax[p]) row.agreeFp64++;
      if (best === chosen) {
        row.agree++;
        continue;
      }
      // Both tokens among the fp64 reference's best, within llama.cpp's own noise of each other.
      const logit = (id: number) => run.top[p]!.find(([i]) => i === id)?.[1];
      const ours = logit(best);
      const theirs = logit(chosen);
      if (ours !== undefined && theirs !== undefined && Math.abs(ours - theirs) <= noise)
        row.explained++;
    }
  }
  return row;
}
