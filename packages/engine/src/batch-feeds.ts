/**
 * Turns a micro-batch into the inputs of a shard's graph beside its KV cache: position ids,
 * the additive attention biases (over the past positions fed, then the new tokens), which
 * positions get logits, and how many past positions the batch is fed (`fedPastWidth`; the
 * past itself comes from `KvCache.fedPast`).
 */
import { MASKED_BIAS } from '@swarmbee/model/graph-io';
import ort from 'onnxruntime-node';
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

/**
 * Bias [B, 1, T, W + T] of sliding-window layers, whose past is a ring of W slots
 * (position p in slot p mod W). Row r's query i, at position q = start + i, may see
 * a past slot when the position it holds, p < start, has q − p < W, and its new
 * tokens j ≤ i with i − j < W — so a chunk longer than the window is windowed
 * within itself too. Padding queries see nothing.
 */
export function windowAttentionBias(
  rows: readonly BatchRow[],
  width: number,
  window: number,
): Float32Array {
  const total = window + width;
  const out = new Float32Array(rows.length * width * total).fill(MASKED_BIAS);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.count; i++) {
      const line = (r * width + i) * total;
      const query = row.start + i;
      if (row.start > 0) {
        for (let slot = 0; slot < window; slot++) {
          // The newest position before `start` that lives in this slot.
          const held = row.start - 1 - ((((row.start - 1 - slot) % window) + window) % window);
          if (held >= 0 && query - held < window) out[line + slot] = 0;
        }
      }
      out.fill(0, line + window + Math.max(0, i - window + 1), line + window + i + 1);
    }
  });
  return out;
}

/**
 * A micro-batch's attention-bias inputs, as tensors: `full` over `pastWidth` past positions
 * when the shard has full-context layers, `window` over a ring of `window` slots when it has
 * sliding-window layers; none for a kind it has no layer of.
 */
export function attentionBiasTensors(
  rows: readonly BatchRow[],
  width: number,
  pastWidth: number,
  kinds: { full: boolean; window: number | undefined },
): { full?: ort.Tensor; window?: ort.Tensor } {
  const bias: { full?: ort.Tensor; window?: ort.Tensor } = {};
  if (kinds.full)
    bias.full = new ort.Tensor('float32', attentionBias(rows, width, pastWidth), [
      rows.length,
      1,
      width,
      pastWidth + width,
    ]);
  if (kinds.window !== undefined)
    bias.window = new ort.Tensor('float32', windowAttentionBias(rows, width, kinds.window), [
      rows.length,
      1,
      width,
      kinds.window + width,
    ]);
  return bias;
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

/**
 * How many past positions a micro-batch's full-context layers are fed: a decode step (one
 * token) reads the arena as it lies, its whole `capacity` (spare and other rows' positions
 * masked; copying would cost what it saves). A chunk of several tokens would compute scores
 * over all of it for every token (for a prompt's first chunk, all masked), so it is fed its
 * rows' pasts up to the longest one (`KvCache.fedPast`), at least one position.
 */
export function fedPastWidth(rows: readonly BatchRow[], width: number, capacity: number): number {
  if (width === 1) return capacity;
  let longest = 1;
  for (const row of rows) longest = Math.max(longest, row.start);
  return longest;
}
