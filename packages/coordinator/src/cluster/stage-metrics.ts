/** Each stage's counters for /metrics, polled from its worker. */
import type { StagePlan } from '@swarmbee/core';
import type { StageMetrics } from '../metrics.js';
import type { WorkerLink } from './worker-link.js';

/** Longest wait for one worker's stats, ms. */
const STATS_TIMEOUT_MS = 5000;
let nextRequest = 1;

export async function pollStageMetrics(
  stages: readonly StagePlan[],
  workers: ReadonlyMap<string, WorkerLink>,
): Promise<StageMetrics[]> {
  const results = await Promise.all(
    stages.map(async (stage): Promise<StageMetrics | undefined> => {
      const link = workers.get(stage.device);
      if (!link?.open) return undefined;
      const reply = await link.channel
        .request(
          { type: 'stats.request', requestId: `stats-${nextRequest++}` },
          { timeoutMs: STATS_TIMEOUT_MS },
        )
        .catch(() => undefined);
      if (!reply) return undefined;
      const s = reply.stats;
      return {
        stage: stage.index,
        device: stage.device,
        forwards: s.forwards ?? 0,
        forwardMsTotal: s.forwardMsTotal ?? 0,
        busyMsTotal: s.busyMsTotal ?? 0,
        queueDepth: s.queueDepth ?? 0,
        bytesSent: s.bytesSent ?? 0,
        idleShare: s.idleShare ?? 1,
      };
    }),
  );
  return results.filter((r): r is StageMetrics => r !== undefined);
}
