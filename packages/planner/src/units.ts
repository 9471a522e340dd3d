/**
 * The planner adds times as integer nanoseconds: sums of integers are exact, so two
 * plans that cost the same really tie, and the DP's sums equal the cost model's.
 */

export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;

/** Milliseconds to whole nanoseconds (the unit every planner sum is taken in). */
export function msToNs(ms: number): number {
  return Math.round(ms * NS_PER_MS);
}

export function nsToMs(ns: number): number {
  return ns / NS_PER_MS;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Human-readable bytes for messages and tables: `1.50 GiB`, `512 B`. */
export function formatBytes(bytes: number): string {
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const sign = bytes < 0 ? '-' : '';
  const digits = unit === 0 ? 0 : value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${sign}${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** Milliseconds for tables: three significant digits without losing whole milliseconds. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}
