/**
 * What the coordinator asks its workers while serving: stage counters for /metrics
 * (polled, one poll at a time), the stages' timelines, and each worker's stats. A worker
 * that is gone or slow to answer is left out of the answer, never a failure of it.
 */
import { asSwarmBeeError, type StagePlan, type StageTimelineEntry } from '@swarmbee/core';
import type { StageMetrics } from '../metrics.js';
import { pollStageMetrics } from './stage-metrics.js';
import type { WorkerLink } from './worker-link.js';

/** Longest wait for a worker's timeline or stats, ms. */
export const QUERY_TIMEOUT_MS = 10_000;

let nextQuery = 1;

/**
 * Polls the stages' counters every `intervalMs` until stopped; each poll starts after the
 * previous one ended, so a slow worker never piles polls up. `onMetrics` hears which
 * deployment the poll asked about: one replaced meanwhile answered for stages that are gone.
 */
export function pollStages<D extends { plan: { stages: readonly StagePlan[] } }>(
  intervalMs: number,
  deployment: () => D | undefined,
  workers: ReadonlyMap<string, WorkerLink>,
  onMetrics: (metrics: StageMetrics[], deployment: D | undefined) => void,
): { stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    const polled = deployment();
    pollStageMetrics(polled?.plan.stages ?? [], workers)
      .then(
        (metrics) => onMetrics(metrics, polled),
        () => {},
      )
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(tick, intervalMs);
        timer.unref();
      });
  };
  timer = setTimeout(tick, intervalMs);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Each stage's micro-batches since `since` (epoch ms); a stage whose worker does not answer has none. */
export function stageTimelines(
  stages: readonly StagePlan[],
  workers: ReadonlyMap<string, WorkerLink>,
  since: number,
): Promise<StageTimelineEntry[]> {
  return Promise.all(
    stages.map(async (stage): Promise<StageTimelineEntry> => {
      const empty = { stage: stage.index, device: stage.device, events: [] };
      const link = workers.get(stage.device);
      if (!link?.open) return empty;
      try {
        const reply = await link.channel.request(
          {
            type: 'profile.request',
            requestId: `timeline-${stage.index}-${nextQuery++}`,
            kind: 'timeline',
            params: { since },
          },
          { timeoutMs: QUERY_TIMEOUT_MS },
        );
        const { events } = reply.result as { events: StageTimelineEntry['events'] };
        return { ...empty, events };
      } catch {
        return empty;
      }
    }),
  );
}

/** Current stats of every worker that answers, by name. */
export async function statsOf(
  links: readonly WorkerLink[],
  log: (line: string) => void,
): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  await Promise.all(
    links.map(async (link) => {
      try {
        const reply = await link.channel.request(
          { type: 'stats.request', requestId: `adhoc-${nextQuery++}` },
          { timeoutMs: QUERY_TIMEOUT_MS },
        );
        out[link.name] = reply.stats;
      } catch (error) {
        log(`worker ${link.name} did not report its stats: ${asSwarmBeeError(error).message}`);
      }
    }),
  );
  return out;
}
