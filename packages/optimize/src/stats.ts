/** Summaries of repeated measurements: medians and spread, never a single sample. */
export interface Summary {
  n: number;
  median: number;
  mean: number;
  min: number;
  max: number;
  p5: number;
  p95: number;
  p99: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    p5: quantile(sorted, 0.05),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
  };
}
