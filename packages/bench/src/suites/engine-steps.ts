/**
 * One decode step taken apart: the wall time the caller sees, and inside the stage's
 * thread the graph run, the other inputs (ids, positions, bias), the KV cache (making
 * room, feeding the past, storing the new rows), sampling and the rest; what is left of
 * the wall time is the hop to the thread and back.
 */
import type { StageEngine, StageTiming } from '@swarmbee/engine';
import { summarize } from '@swarmbee/optimize';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** The parts of a step, in milliseconds. */
export const STEP_PARTS = ['graph', 'feeds', 'kv', 'sampling', 'stageOther', 'hop'] as const;
export type StepPart = (typeof STEP_PARTS)[number];

export interface StepSample {
  wallMs: number;
  parts: Record<StepPart, number>;
}

function parts(wallMs: number, t: StageTiming): Record<StepPart, number> {
  const stageMs = t.stageMs ?? wallMs;
  const feeds = t.feedsMs ?? 0;
  const sampling = t.sampleMs ?? 0;
  return {
    graph: t.forwardMs,
    feeds,
    kv: t.kvMs,
    sampling,
    stageOther: Math.max(0, stageMs - t.forwardMs - feeds - t.kvMs - sampling),
    hop: Math.max(0, wallMs - stageMs),
  };
}

/** Prompt ids for the benchmark: deterministic, spread over the vocabulary. */
export function benchPrompt(tokens: number, vocab: number): BigInt64Array {
  return BigInt64Array.from({ length: tokens }, (_, i) => BigInt(1 + ((i * 7919) % (vocab - 1))));
}

/** Prefills `context` tokens on a last stage holding every layer, then times `steps` greedy steps. */
export async function timeStageDecode(
  stage: StageEngine,
  context: number,
  steps: number,
): Promise<StepSample[]> {
  const seqId = `steps-${context}-${Math.random().toString(36).slice(2)}`;
  const first = await stage.forward({
    rows: [{ seqId, start: 0, count: context, sampling: GREEDY }],
    tokens: benchPrompt(context, stage.info.vocabSize),
  });
  if (first.kind !== 'tokens') throw new Error('timeStageDecode needs a stage with the LM head');
  let token = first.tokens[0]!;
  const samples: StepSample[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const start = performance.now();
      const out = await stage.forward({
        rows: [{ seqId, start: context + i, count: 1, sampling: GREEDY }],
        tokens: BigInt64Array.of(BigInt(token)),
      });
      const wallMs = performance.now() - start;
      if (out.kind !== 'tokens') throw new Error('expected tokens');
      samples.push({ wallMs, parts: parts(wallMs, out.timing) });
      token = out.tokens[0]!;
    }
  } finally {
    await stage.release([seqId]);
  }
  return samples;
}

/** One prefill of `tokens` tokens, in ms. */
export async function timeStagePrefill(stage: StageEngine, tokens: number): Promise<number> {
  const seqId = `prefill-${Math.random().toString(36).slice(2)}`;
  const start = performance.now();
  await stage.forward({
    rows: [{ seqId, start: 0, count: tokens, sampling: GREEDY }],
    tokens: benchPrompt(tokens, stage.info.vocabSize),
  });
  const ms = performance.now() - start;
  await stage.release([seqId]);
  return ms;
}

/** Median of each part over the steps (the parts' medians need not add up to the wall median). */
export function medianParts(samples: readonly StepSample[]): Record<StepPart, number> {
  return Object.fromEntries(
    STEP_PARTS.map((p) => [p, summarize(samples.map((s) => s.parts[p])).median]),
  ) as Record<StepPart, number>;
}
