/** What a worker's stats answer shows: its shard intake, its stage's counters and its memory. */
import { processFaults } from '@swarmbee/core';
import type { ShardIntakeCounters } from './shard-intake.js';
import type { StageRunner } from './stage-runner.js';

/** The worker's counters by name; a worker without a stage reports stage -1 and zeros. */
export function workerStats(
  shards: ShardIntakeCounters,
  runner: StageRunner | undefined,
): Record<string, number> {
  const stage = runner?.stats();
  return {
    ...shards,
    stage: runner?.stage ?? -1,
    forwards: stage?.forwards ?? 0,
    forwardMsTotal: stage?.forwardMsTotal ?? 0,
    busyMsTotal: stage?.busyMsTotal ?? 0,
    queueDepth: stage?.queueDepth ?? 0,
    bytesSent: stage?.bytesSent ?? 0,
    idleShare: stage?.idleShare ?? 1,
    failedBatches: stage?.failedBatches ?? 0,
    processFaults: processFaults(),
    ...memoryStats(),
  };
}

/** This process's memory, bytes: resident, the JS heap in use, and memory outside it. */
function memoryStats(): Record<string, number> {
  const memory = process.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
  };
}
