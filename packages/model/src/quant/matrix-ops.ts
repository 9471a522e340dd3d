/**
 * Lossless reshaping of quantized matrices in MatMulNBits' layout: wider codes (int4 →
 * int8, same code values), smaller blocks (a block of 32 split into two of 16 with the same
 * scale and zero point), rows stacked or reordered. Every weight dequantizes to the same
 * value before and after, so matrices of different origins can be fused into one weight
 * (q, k and v; gate and up) without loss. Pure: no I/O.
 */
import { QuantizationUnsupportedError } from '@swarmbee/core';
import { type QuantBits, type QuantizedMatrix, quantizedLayout } from './block-quant.js';

function code(bytes: Uint8Array, base: number, index: number, bits: QuantBits): number {
  return bits === 8
    ? bytes[base + index]!
    : (bytes[base + (index >> 1)]! >> ((index & 1) * 4)) & 0xf;
}

function put(bytes: Uint8Array, base: number, index: number, bits: QuantBits, value: number) {
  if (bits === 8) bytes[base + index] = value;
  else bytes[base + (index >> 1)]! |= value << ((index & 1) * 4);
}

/** The same matrix with `bits` per code and blocks of `blockSize` (≤ the current, dividing it; bits ≥ the current). */
export function reshapeQuantized(
  matrix: QuantizedMatrix,
  bits: QuantBits,
  blockSize: number,
): QuantizedMatrix {
  if (bits === matrix.bits && blockSize === matrix.blockSize) return matrix;
  if (bits < matrix.bits || blockSize > matrix.blockSize || matrix.blockSize % blockSize !== 0)
    throw new QuantizationUnsupportedError(
      `cannot turn int${matrix.bits} blocks of ${matrix.blockSize} into int${bits} blocks of ${blockSize} without loss`,
    );
  const { rows, cols } = matrix;
  const from = quantizedLayout(rows, cols, matrix.bits, matrix.blockSize);
  const to = quantizedLayout(rows, cols, bits, blockSize);
  const split = matrix.blockSize / blockSize;
  const codes = new Uint8Array(rows * to.blocks * to.blockBytes);
  const scales = new Float32Array(rows * to.blocks);
  const zeroPoints = new Uint8Array(rows * to.zeroPointBytesPerRow);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < to.blocks; b++) {
      const source = Math.floor(b / split);
      scales[r * to.blocks + b] = matrix.scales[r * from.blocks + source]!;
      const zp = code(matrix.zeroPoints, r * from.zeroPointBytesPerRow, source, matrix.bits);
      put(zeroPoints, r * to.zeroPointBytesPerRow, b, bits, zp);
      const sourceBase = (r * from.blocks + source) * from.blockBytes;
      const offset = (b % split) * blockSize;
      const base = (r * to.blocks + b) * to.blockBytes;
      for (let j = 0; j < blockSize; j++)
        put(codes, base, j, bits, code(matrix.codes, sourceBase, offset + j, matrix.bits));
    }
  }
  return { bits, blockSize, rows, cols, codes, scales, zeroPoints };
}

/** Matrices with the same columns, bits and block size, stacked row-wise (the first on top). */
export function stackQuantized(parts: readonly QuantizedMatrix[]): QuantizedMatrix {
  const [first] = parts;
  if (!first) throw new QuantizationUnsupportedError('nothing to stack');
  for (const p of parts)
    if (p.cols !== first.cols || p.bits !== first.bits || p.blockSize !== first.blockSize)
      throw new QuantizationUnsupportedError(
        `cannot stack [${p.rows}, ${p.cols}] int${p.bits}/${p.blockSize} under [${first.rows}, ${first.cols}] int${first.bits}/${first.blockSize}`,
      );
  if (parts.length === 1) return first;
  const concat = <T extends Uint8Array | Float32Array>(
    pick: (m: QuantizedMatrix) => T,
    make: (n: number) => T,
  ) => {
    const out = make(parts.reduce((n, p) => n + pick(p).length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(pick(p), at);
      at += pick(p).length;
    }
    return out;
  };
  return {
    bits: first.bits,
    blockSize: first.blockSize,
    rows: parts.reduce((n, p) => n + p.rows, 0),
    cols: first.cols,
    codes: concat(
      (m) => m.codes,
      (n) => new Uint8Array(n),
    ),
    scales: concat(
      (m) => m.scales,
      (n) => new Float32Array(n),
    ),
    zeroPoints: concat(
      (m) => m.zeroPoints,
      (n) => new Uint8Array(n),
    ),
  };
}

/** The matrix with row `i` of the result taken from row `order[i]`. */
export function reorderQuantizedRows(
  matrix: QuantizedMatrix,
  order: readonly number[],
): QuantizedMatrix {
  const { rows, cols, bits, blockSize } = matrix;
  const layout = quantizedLayout(rows, cols, bits, blockSize);
  const codeRow = layout.blocks * layout.blockBytes;
  const codes = new Uint8Array(matrix.codes.length);
  const scales = new Float32Array(matrix.scales.length);
  const zeroPoints = new Uint8Array(matrix.zeroPoints.length);
  order.forEach((from, to) => {
    codes.set(matrix.codes.subarray(from * codeRow, (from + 1) * codeRow), to * codeRow);
    scales.set(
      matrix.scales.subarray(from * layout.blocks, (from + 1) * layout.blocks),
      to * layout.blocks,
    );
    const zp = layout.zeroPointBytesPerRow;
    zeroPoints.set(matrix.zeroPoints.subarray(from * zp, (from + 1) * zp), to * zp);
  });
  return { ...matrix, codes, scales, zeroPoints };
}
