/**
 * Turns a micro-batch into onnxruntime feeds: position ids, the additive
 * attention bias and the past KV per layer. A single row feeds its cache in
 * place; several rows are padded into one [B, Pmax, kvDim] block per layer,
 * each row's past left-aligned, then masked.
 */
import { MASKED_BIAS } from '@swarmbee/model';
import type { BatchRow } from './stage-engine.js';

/** Positions: row r's token i sits at start + i; padding gets position 0. */
export function positionIds(rows: readonly BatchRow[], width: number): BigInt64Array {
  const out = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.count; i++) out[r * width + i] = BigInt(row.start + i);
  });
  return out;
}

/**
 * Bias [B, 1, T, pastWidth + T]. Row r's query i may see the row's own past
 * (slots < start) and its new tokens up to itself (slots pastWidth .. pastWidth + i).
 * Padding queries see nothing; the finite mask keeps their softmax NaN-free.
 */
export function attentionBias(
  rows: readonly BatchRow[],
  width: number,
  pastWidth: number,
): Float32Array {
  const total = pastWidth + width;
  const out = new Float32Array(rows.length * width * total).fill(MASKED_BIAS);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.count; i++) {
      const line = (r * width + i) * total;
      out.fill(0, line, line + row.start);
      out.fill(0, line + pastWidth, line + pastWidth + i + 1);
    }
  });
  return out;
}

/** Which positions get logits: each row's last real token, or all T. */
export function logitIndex(
  rows: readonly BatchRow[],
  width: number,
  which: 'last' | 'all',
): BigInt64Array {
  if (which === 'last') return BigInt64Array.from(rows, (row) => BigInt(row.count - 1));
  const out = new BigInt64Array(rows.length * width);
  for (let r = 0; r < rows.length; r++)
    for (let i = 0; i < width; i++) out[r * width + i] = BigInt(i);
  return out;
}
