/**
 * Memory bandwidth as a large copy sees it (STREAM "copy": bytes read plus
 * bytes written, per second). The yardstick for decode, which streams every
 * weight once per token.
 */
export const BANDWIDTH_COPY_BYTES = 256 * 1024 * 1024;

/** Best of `repeats` copies, in bytes per second. */
export function measureCopyBandwidth(repeats = 7, bytes = BANDWIDTH_COPY_BYTES): number {
  const source = new Float64Array(bytes / 8).fill(1);
  const target = new Float64Array(bytes / 8);
  let best = 0;
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    target.set(source);
    const seconds = (performance.now() - start) / 1000;
    best = Math.max(best, (2 * bytes) / seconds);
  }
  return best;
}
