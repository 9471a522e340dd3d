/** Tokens per second as `generate` prints them: one decimal. */
export function roundRate(value: number): number {
  return Math.round(value * 10) / 10;
}
