/**
 * Feeds for a stage cut out of an imported decoder, whose IO follows the
 * export (GPT-2 style): explicit position ids, and a 0/1 attention mask over
 * [past slots, new tokens] that hides padding — a row's unused cache capacity,
 * other rows' longer pasts, and the padded tail of shorter rows.
 */
import type { DecoderIndexDtype } from '@swarmbee/core';
import ort from 'onnxruntime-node';
import type { BatchRow } from './stage-engine.js';

/** An int32 or int64 tensor, as the graph declares the input. */
export function indexTensor(
  dtype: DecoderIndexDtype,
  values: Int32Array | BigInt64Array,
  dims: number[],
): ort.Tensor {
  if (dtype === 'int64') {
    const data = values instanceof BigInt64Array ? values : BigInt64Array.from(values, BigInt);
    return new ort.Tensor('int64', data, dims);
  }
  const data = values instanceof Int32Array ? values : Int32Array.from(values, Number);
  return new ort.Tensor('int32', data, dims);
}

/** Row r's token i sits at start + i; padding takes position 0 (any valid row of a position table). */
export function decoderPositions(rows: readonly BatchRow[], width: number): Int32Array {
  const out = new Int32Array(rows.length * width);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.count; i++) out[r * width + i] = row.start + i;
  });
  return out;
}

/**
 * Mask [B, pastWidth + T]: 1 for a row's own past (slots < start) and its real new
 * tokens (slots pastWidth .. pastWidth + count); 0 elsewhere. The graph applies
 * causality among the new tokens itself, relative to pastWidth.
 */
export function decoderAttentionMask(
  rows: readonly BatchRow[],
  width: number,
  pastWidth: number,
): Int32Array {
  const total = pastWidth + width;
  const out = new Int32Array(rows.length * total);
  rows.forEach((row, r) => {
    out.fill(1, r * total, r * total + row.start);
    out.fill(1, r * total + pastWidth, r * total + pastWidth + row.count);
  });
  return out;
}

/**
 * The logits sampling needs, as float32: each row's last real token ([B, 1, vocab]),
 * or every position ([B, T, vocab]). fp16 logits are widened.
 */
export function pickLogits(
  data: Float32Array | Uint16Array,
  rows: readonly BatchRow[],
  width: number,
  vocab: number,
  which: 'last' | 'all',
): Float32Array {
  const all = data instanceof Float32Array ? data : halfToFloat(data);
  if (which === 'all') return all;
  const out = new Float32Array(rows.length * vocab);
  rows.forEach((row, r) => {
    const from = (r * width + row.count - 1) * vocab;
    out.set(all.subarray(from, from + vocab), r * vocab);
  });
  return out;
}

/** IEEE 754 half-precision words to float32. */
export function halfToFloat(words: Uint16Array): Float32Array {
  const out = new Float32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const h = words[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    out[i] =
      exponent === 0
        ? sign * 2 ** -14 * (fraction / 1024)
        : exponent === 0x1f
          ? fraction
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}
