/** Plans as rows of strings, for whoever prints tables (the CLI, benchmark reports). */
import type { PlannerComparison } from './plan.js';
import type { PlannedFigures, PlanResult } from './types.js';
import { formatBytes, formatMs } from './units.js';

/** One row per stage, header first. */
export function stageRows(result: PlanResult): string[][] {
  const rows = [['stage', 'device', 'layers', 'memory', 'of', 'decode ms', 'prefill chunk ms']];
  for (const s of result.stages) {
    rows.push([
      String(s.index),
      s.device,
      `${s.layerStart}-${s.layerEnd - 1}`,
      formatBytes(s.memoryBytes),
      formatBytes(s.deviceMemoryBytes),
      formatMs(s.computeMs),
      formatMs(s.prefillChunkMs),
    ]);
  }
  return rows;
}

/** The plan's headline numbers as label/value rows. */
export function summaryRows(result: PlanResult): string[][] {
  return [
    ['planner', result.planner],
    ['objective', result.objective],
    ['stages', String(result.stages.length)],
    ['micro-batch', `${result.microBatchSize} × ${result.microBatchesInFlight} in flight`],
    ['timings at', result.workload.risk],
    ['TTFT ms', `${formatMs(result.ttftMs)}  (${range(result, (f) => formatMs(f.ttftMs))})`],
    ['TPOT ms', `${formatMs(result.tpotMs)}  (${range(result, (f) => formatMs(f.tpotMs))})`],
    [
      'tokens/s',
      `${result.tokensPerS.toFixed(2)}  (${range(result, (f) => f.tokensPerS.toFixed(2))})`,
    ],
    ['bottleneck', result.bottleneck],
  ];
}

/** The predicted range: from the profile's medians to its 90th percentiles. */
function range(result: PlanResult, show: (figures: PlannedFigures) => string): string {
  return `p50 ${show(result.range.p50)} .. p90 ${show(result.range.p90)}`;
}

/** One row per planner, header first; a planner that found nothing shows its error code. */
export function comparisonRows(entries: readonly PlannerComparison[]): string[][] {
  const rows = [
    [
      'planner',
      'stages',
      'devices',
      'micro-batch',
      'TTFT ms',
      'TPOT ms',
      'tokens/s',
      'bottleneck',
      'plan ms',
    ],
  ];
  for (const { planner, result, error, elapsedMs } of entries) {
    if (!result) {
      rows.push([
        planner,
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        error?.code ?? 'no plan',
        formatMs(elapsedMs),
      ]);
      continue;
    }
    rows.push([
      planner,
      String(result.stages.length),
      result.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' '),
      `${result.microBatchSize}×${result.microBatchesInFlight}`,
      formatMs(result.ttftMs),
      formatMs(result.tpotMs),
      result.tokensPerS.toFixed(2),
      result.bottleneck,
      formatMs(elapsedMs),
    ]);
  }
  return rows;
}
