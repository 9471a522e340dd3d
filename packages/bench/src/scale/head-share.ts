/**
 * Where a decode step of a large-vocabulary model goes (issue 16, item 7): the last stage's
 * LM head over the whole vocabulary, and sampling from its logits. Timed on one-layer shards
 * as the profiler times a device — embedding + layer 0, a middle layer, the last layer + norm
 * + head — so the head is (last − middle) and a whole decode step is first + (L − 2) × middle
 * + last, without holding the whole model in memory.
 */
import type { SamplingParams } from '@swarmbee/core';
import { createStageEngine, type StageEngine } from '@swarmbee/engine';
import { buildShard, type ModelDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';

export interface HeadShareRow {
  model: string;
  /** Median decode step of one middle layer, ms. */
  layerMs: number;
  /** The final norm and LM head: last-layer shard − middle-layer shard, ms. */
  headMs: number;
  /** A whole one-row decode step, ms. */
  stepMs: number;
  /** Sampling one token from the logits, ms: greedy, and temperature 0.8 with top-k 40 and top-p 0.9. */
  greedyMs: number;
  sampledMs: number;
}

const CONTEXT_TOKENS = 64;
const STEPS = 16;
const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };
const SAMPLED: SamplingParams = { temperature: 0.8, topK: 40, topP: 0.9, seed: 1 };

/** Median forward and sampling times of decode steps after a 64-token prompt. */
async function decodeTimes(
  stage: StageEngine,
  dim: number,
  sampling?: SamplingParams,
): Promise<{ forwardMs: number; sampleMs: number }> {
  const first = stage.info.isFirst;
  const input = (count: number) =>
    first
      ? { tokens: BigInt64Array.from({ length: count }, (_, i) => BigInt(3 + i)) }
      : { hidden: Float32Array.from({ length: count * dim }, (_, i) => Math.sin(i) / 4) };
  const seqId = `head-share-${sampling?.temperature ?? 'none'}`;
  await stage.forward({
    rows: [{ seqId, start: 0, count: CONTEXT_TOKENS }],
    ...input(CONTEXT_TOKENS),
  });
  const forward: number[] = [];
  const sample: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const row = { seqId, start: CONTEXT_TOKENS + step, count: 1 };
    const out = await stage.forward({
      rows: [sampling ? { ...row, sampling } : row],
      ...input(1),
    });
    forward.push(out.timing.stageMs! - (out.timing.sampleMs ?? 0));
    sample.push(out.timing.sampleMs ?? 0);
  }
  await stage.release([seqId]);
  return { forwardMs: summarize(forward).median, sampleMs: summarize(sample).median };
}

export async function headShare(
  label: string,
  dir: ModelDir,
  intraOpThreads: number,
): Promise<HeadShareRow> {
  const { nLayers, dim } = dir.manifest.config;
  const time = async (start: number, sampling?: SamplingParams[]) => {
    const stage = await createStageEngine(buildShard(dir, { start, end: start + 1 }), {
      intraOpThreads,
    });
    try {
      const runs = [];
      for (const s of sampling ?? [undefined]) runs.push(await decodeTimes(stage, dim, s));
      return runs;
    } finally {
      await stage.close();
    }
  };
  const [first] = await time(0);
  const [middle] = await time(Math.floor(nLayers / 2));
  const [greedy, sampled] = await time(nLayers - 1, [GREEDY, SAMPLED]);
  const layerMs = middle!.forwardMs;
  const lastMs = greedy!.forwardMs;
  return {
    model: label,
    layerMs,
    headMs: lastMs - layerMs,
    stepMs: first!.forwardMs + (nLayers - 2) * layerMs + lastMs,
    greedyMs: greedy!.sampleMs,
    sampledMs: sampled!.sampleMs,
  };
}
