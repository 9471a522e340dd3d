/**
 * A per-stage timeline of one run: for every micro-batch, when each stage waited
 * for its engine, computed, and sent on — and, between batches, when it sat idle.
 */

import { type ApiTarget, getJson } from '@swarmbee/coordinator';
import type { StageTimelineEntry } from '@swarmbee/core';
import type { TimelineSpan } from '../report/svg.js';
import { runCell } from './scenario.js';

export interface StageTimeline {
  lanes: { name: string; spans: TimelineSpan[] }[];
  /** Per stage: share of the run's span it spent computing, 0..1. */
  busyShare: { stage: number; device: string; busy: number }[];
  windowMs: number;
}

/** Runs `streams` concurrent completions and returns what each stage did meanwhile. */
export async function recordTimeline(
  target: ApiTarget,
  vocab: number,
  promptTokens: number,
  outputTokens: number,
  streams: number,
): Promise<StageTimeline> {
  const since = performance.timeOrigin + performance.now();
  await runCell(target, vocab, promptTokens, outputTokens, streams, 1);
  const { stages } = await getJson<{ stages: StageTimelineEntry[] }>(
    target,
    `/swarmbee/timeline?since=${Math.floor(since)}`,
  );
  const all = stages.flatMap((s) => s.events);
  const start = Math.min(...all.map((e) => e.arrivedAt));
  const end = Math.max(...all.map((e) => e.sentAt));
  const windowMs = Math.max(1e-6, end - start);
  return {
    windowMs,
    lanes: stages.map((s) => ({
      name: `stage ${s.stage} (${s.device})`,
      spans: s.events.flatMap((e) => [
        {
          start: e.arrivedAt - start,
          end: Math.max(e.arrivedAt, e.computeStart) - start,
          kind: 'wait',
        },
        { start: e.computeStart - start, end: e.computeEnd - start, kind: 'forward' },
        { start: e.computeEnd - start, end: e.sentAt - start, kind: 'send' },
      ]),
    })),
    busyShare: stages.map((s) => ({
      stage: s.stage,
      device: s.device,
      busy: s.events.reduce((n, e) => n + (e.computeEnd - e.computeStart), 0) / windowMs,
    })),
  };
}
