/**
 * Decode speed of several models measured fairly on a shared, noisy machine: every
 * pipeline stays loaded, and rounds of decode steps alternate between them, so a burst
 * of load elsewhere hits all of them alike; the figure is the median step.
 */
import { LocalPipeline, type Pipeline, type StageOptions } from '@swarmbee/engine';
import type { ModelDir, ProgressFn } from '@swarmbee/model';
import { type Summary, summarize } from './stats.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** Prefills `context` tokens, then times `steps` single-token decode steps. */
export async function timeDecode(
  pipeline: Pipeline,
  context: number,
  steps: number,
  vocab: number,
): Promise<number[]> {
  const seqId = `bench-${context}-${Math.random().toString(36).slice(2)}`;
  const prompt = BigInt64Array.from({ length: context }, (_, i) =>
    BigInt(1 + ((i * 7919) % (vocab - 1))),
  );
  let token = (
    await pipeline.step({
      rows: [{ seqId, start: 0, count: context, sampling: GREEDY }],
      tokens: prompt,
    })
  ).tokens[0]!;
  const samples: number[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const start = performance.now();
      const result = await pipeline.step({
        rows: [{ seqId, start: context + i, count: 1, sampling: GREEDY }],
        tokens: BigInt64Array.of(BigInt(token)),
      });
      samples.push(performance.now() - start);
      token = result.tokens[0]!;
    }
  } finally {
    await pipeline.release([seqId]);
  }
  return samples;
}

export interface DecodeSpeed {
  label: string;
  /** 1000 / median step. */
  tokensPerSecond: number;
  stepMs: Summary;
  samples: number[];
}

export interface DecodeSpeedOptions {
  /** Tokens in the cache when decoding starts. Default 16. */
  context?: number;
  /** Decode steps per pipeline per round. Default 16. */
  steps?: number;
  /** Rounds (the first is a warm-up, not counted). Default 5. */
  rounds?: number;
  progress?: ProgressFn;
}

export async function measureDecodeSpeeds(
  pipelines: readonly { label: string; pipeline: Pipeline }[],
  options: DecodeSpeedOptions = {},
): Promise<DecodeSpeed[]> {
  const context = options.context ?? 16;
  const steps = options.steps ?? 16;
  const rounds = options.rounds ?? 5;
  const samples = pipelines.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, { pipeline }] of pipelines.entries()) {
      const times = await timeDecode(pipeline, context, steps, pipeline.info.vocabSize);
      if (round > 0) samples[i]!.push(...times);
    }
    options.progress?.({ phase: 'decode speed', done: round + 1, total: rounds, unit: 'steps' });
  }
  return pipelines.map(({ label }, i) => {
    const stepMs = summarize(samples[i]!);
    return { label, tokensPerSecond: 1000 / stepMs.median, stepMs, samples: samples[i]! };
  });
}

/** {@link measureDecodeSpeeds} over model dirs, each loaded as one threaded stage as serving would. */
export async function measureModelDecodeSpeeds(
  models: readonly { label: string; dir: ModelDir }[],
  options: DecodeSpeedOptions & { stage?: StageOptions } = {},
): Promise<DecodeSpeed[]> {
  const pipelines: { label: string; pipeline: Pipeline }[] = [];
  try {
    for (const { label, dir } of models) {
      pipelines.push({
        label,
        pipeline: await LocalPipeline.create(dir, { stages: 1, stage: options.stage }),
      });
    }
    return await measureDecodeSpeeds(pipelines, options);
  } finally {
    await Promise.allSettled(pipelines.map((p) => p.pipeline.close()));
  }
}
