/** `swarmbee bench --compare A.json B.json`: the ratio of every metric the two runs share. */
import { readFile } from 'node:fs/promises';
import type { BenchResult } from './report/report.js';

export interface MetricRatio {
  metric: string;
  unit: string;
  a: number;
  b: number;
  /** b / a. */
  ratio: number;
}

export async function loadResult(path: string): Promise<BenchResult> {
  return JSON.parse(await readFile(path, 'utf8')) as BenchResult;
}

export function compareResults(a: BenchResult, b: BenchResult): MetricRatio[] {
  const rows: MetricRatio[] = [];
  for (const [metric, ma] of Object.entries(a.metrics)) {
    const mb = b.metrics[metric];
    if (!mb) continue;
    rows.push({
      metric,
      unit: ma.unit,
      a: ma.summary.median,
      b: mb.summary.median,
      ratio: mb.summary.median / ma.summary.median,
    });
  }
  return rows;
}
