/** Plans as rows of strings, for whoever prints tables (the CLI, benchmark reports). */
import type { ParallelismComparison, PlannerComparison } from './plan.js';
import type { PlannedFigures, PlannedStage, PlanResult } from './types.js';
import { formatBytes, formatMs } from './units.js';

/** Who runs a stage: its device, or a group's members by rank and how they sum (`a+b ring`). */
export function stageDevicesText(stage: PlannedStage): string {
  return stage.tensor
    ? `${stage.tensor.devices.join('+')} ${stage.tensor.allReduce}`
    : stage.device;
}

/** A plan's stages on one line: `a[0-5] b+c ring[6-11]`. */
function stagesText(result: PlanResult): string {
  return result.stages
    .map((s) => `${stageDevicesText(s)}[${s.layerStart}-${s.layerEnd - 1}]`)
    .join(' ');
}

/** Stages, micro-batch, TTFT, TPOT, tokens/s and bottleneck: the cells comparisons share. */
function figureCells(result: PlanResult): string[] {
  return [
    stagesText(result),
    `${result.microBatchSize}×${result.microBatchesInFlight}`,
    formatMs(result.ttftMs),
    formatMs(result.tpotMs),
    result.tokensPerS.toFixed(2),
    result.bottleneck,
  ];
}

/** One row per stage, header first; a group's memory is its leader's (rank 0). */
export function stageRows(result: PlanResult): string[][] {
  const rows = [['stage', 'device', 'layers', 'memory', 'of', 'decode ms', 'prefill chunk ms']];
  for (const s of result.stages) {
    rows.push([
      String(s.index),
      stageDevicesText(s),
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
    ['parallelism', result.parallelism],
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
    rows.push([planner, String(result.stages.length), ...figureCells(result), formatMs(elapsedMs)]);
  }
  return rows;
}

/**
 * One row per parallelism (pipeline, tensor, hybrid), header first: the stages with their
 * groups, predicted TTFT, ms per token, tokens/s and bottleneck; a failure shows its code.
 */
export function parallelismRows(entries: readonly ParallelismComparison[]): string[][] {
  const rows = [
    [
      'parallelism',
      'stages (devices[layers])',
      'micro-batch',
      'TTFT ms',
      'ms/token',
      'tokens/s',
      'bottleneck',
    ],
  ];
  for (const { parallelism, result, error } of entries) {
    if (!result) {
      rows.push([parallelism, '-', '-', '-', '-', '-', error?.code ?? 'no plan']);
      continue;
    }
    rows.push([parallelism, ...figureCells(result)]);
  }
  return rows;
}
