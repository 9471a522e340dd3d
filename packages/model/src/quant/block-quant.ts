/**
 * Block-wise asymmetric weight quantization in onnxruntime's MatMulNBits layout. Each
 * row (an output feature) is cut into blocks of `blockSize` weights along the input
 * dimension; a block stores one fp32 scale, one zero point and a `bits`-bit code per
 * weight, and a weight reads back as `(code − zeroPoint) × scale`. The block's range
 * always includes 0, so zero weights (and padding) stay exactly zero; of a few ranges
 * from [min, max] inwards, the one with the least squared error is kept.
 *
 * Codes are packed low bits first along the input dimension, the last block padded with
 * the zero point; zero points are packed the same way along the blocks. Pure: no I/O.
 */
import { QuantizationUnsupportedError, type WeightQuantization } from '@swarmbee/core';

export type QuantBits = WeightQuantization['bits'];

/** The default block: 32 weights, as llama.cpp's Q4_0/Q8_0 and onnxruntime's quantizer use. */
export const DEFAULT_QUANT_BLOCK_SIZE = 32;

/** A quantized `[rows, cols]` matrix: codes, per-block scales and zero points. */
export interface QuantizedMatrix {
  bits: QuantBits;
  blockSize: number;
  rows: number;
  cols: number;
  /** `[rows, blocks, blockBytes]`. */
  codes: Uint8Array;
  /** `[rows, blocks]`. */
  scales: Float32Array;
  /** `[rows, zeroPointBytesPerRow]`. */
  zeroPoints: Uint8Array;
}

/** Shapes and byte sizes of a quantized matrix's three tensors. */
export interface QuantizedLayout {
  blocks: number;
  /** Bytes of one block's codes: blockSize × bits / 8. */
  blockBytes: number;
  zeroPointBytesPerRow: number;
  codesShape: [number, number, number];
  scalesShape: [number, number];
  zeroPointsShape: [number, number];
  /** Codes + scales + zero points. */
  bytes: number;
}

/** Throws a coded error unless `bits` and `blockSize` are ones MatMulNBits runs. */
export function checkQuantization(bits: number, blockSize: number): asserts bits is QuantBits {
  if (bits !== 8 && bits !== 4) {
    throw new QuantizationUnsupportedError(`--bits must be 8 or 4, got ${bits}`);
  }
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new QuantizationUnsupportedError(
      `--block-size must be a power of two of at least 16 (onnxruntime's MatMulNBits), got ${blockSize}`,
    );
  }
}

export function quantizedLayout(
  rows: number,
  cols: number,
  bits: QuantBits,
  blockSize: number,
): QuantizedLayout {
  const blocks = Math.ceil(cols / blockSize);
  const blockBytes = (blockSize * bits) / 8;
  const zeroPointBytesPerRow = Math.ceil((blocks * bits) / 8);
  return {
    blocks,
    blockBytes,
    zeroPointBytesPerRow,
    codesShape: [rows, blocks, blockBytes],
    scalesShape: [rows, blocks],
    zeroPointsShape: [rows, zeroPointBytesPerRow],
    bytes: rows * blocks * blockBytes + rows * blocks * 4 + rows * zeroPointBytesPerRow,
  };
}

/** Quantizes a row-major `[rows, cols]` fp32 matrix. */
export function quantizeBlockwise(
  values: Float32Array,
  rows: number,
  cols: number,
  bits: QuantBits,
  blockSize: number,
): QuantizedMatrix {
  checkQuantization(bits, blockSize);
  if (values.length !== rows * cols) {
    throw new QuantizationUnsupportedError(
      `a [${rows}, ${cols}] matrix needs ${rows * cols} values, got ${values.length}`,
    );
  }
  const layout = quantizedLayout(rows, cols, bits, blockSize);
  const { blocks, blockBytes, zeroPointBytesPerRow } = layout;
  const codes = new Uint8Array(rows * blocks * blockBytes);
  const scales = new Float32Array(rows * blocks);
  const zeroPoints = new Uint8Array(rows * zeroPointBytesPerRow);
  const maxCode = 2 ** bits - 1;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let b = 0; b < blocks; b++) {
      const from = b * blockSize;
      const to = Math.min(cols, from + blockSize);
      let lo = 0;
      let hi = 0;
      for (let k = from; k < to; k++) {
        const v = values[row + k]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const { scale, zeroPoint } = blockRange(values, row + from, row + to, lo, hi, maxCode);
      scales[r * blocks + b] = scale;
      putCode(zeroPoints, r * zeroPointBytesPerRow, b, bits, zeroPoint);
      const base = (r * blocks + b) * blockBytes;
      for (let j = 0; j < blockSize; j++) {
        const k = from + j;
        const code =
          k < to
            ? Math.min(maxCode, Math.max(0, Math.round(values[row + k]! / scale) + zeroPoint))
            : zeroPoint;
        putCode(codes, base, j, bits, code);
      }
    }
  }
  return { bits, blockSize, rows, cols, codes, scales, zeroPoints };
}

/**
 * Range shrink factors tried per block: the full [min, max] range, then narrower ones that
 * clip the block's extremes. A narrower range buys a finer step for every other weight;
 * the one with the least squared error wins (llama.cpp and onnxruntime's quantizers search
 * the same trade-off).
 */
const RANGE_SHRINK = [1, 0.95, 0.9, 0.85, 0.8, 0.75];

/**
 * Names how codes are chosen, recorded with every quantization step: models quantized by
 * another method are not the same weights. Measured on stories260K, the range search takes
 * int4's KL from 0.112 (plain min/max) to 0.099 and leaves int8 unchanged.
 */
export const QUANT_METHOD = 'asymmetric-range-search';

/** The scale and zero point of one block, `values[from, to)` spanning [lo, hi] ∋ 0. */
function blockRange(
  values: Float32Array,
  from: number,
  to: number,
  lo: number,
  hi: number,
  maxCode: number,
): { scale: number; zeroPoint: number } {
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  let best = { scale: 1, zeroPoint: 0 };
  let bestError = Number.POSITIVE_INFINITY;
  for (const shrink of RANGE_SHRINK) {
    // Round with the fp32 scale that is stored, so codes and dequantization agree.
    const scale = Math.fround(((hi - lo) * shrink) / maxCode);
    const zeroPoint = Math.min(maxCode, Math.max(0, Math.round(-(lo * shrink) / scale)));
    let error = 0;
    for (let k = from; k < to && error < bestError; k++) {
      const v = values[k]!;
      const code = Math.min(maxCode, Math.max(0, Math.round(v / scale) + zeroPoint));
      error += ((code - zeroPoint) * scale - v) ** 2;
    }
    if (error < bestError) {
      bestError = error;
      best = { scale, zeroPoint };
    }
  }
  return best;
}

/** The fp32 matrix a quantized one stands for: what MatMulNBits multiplies by. */
export function dequantizeBlockwise(matrix: QuantizedMatrix): Float32Array {
  const { bits, blockSize, rows, cols, codes, scales, zeroPoints } = matrix;
  const { blocks, blockBytes, zeroPointBytesPerRow } = quantizedLayout(rows, cols, bits, blockSize);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[r * blocks + b]!;
      const zeroPoint = getCode(zeroPoints, r * zeroPointBytesPerRow, b, bits);
      const base = (r * blocks + b) * blockBytes;
      const from = b * blockSize;
      const count = Math.min(blockSize, cols - from);
      for (let j = 0; j < count; j++) {
        out[r * cols + from + j] = (getCode(codes, base, j, bits) - zeroPoint) * scale;
      }
    }
  }
  return out;
}

function putCode(bytes: Uint8Array, base: number, index: number, bits: QuantBits, code: number) {
  if (bits === 8) bytes[base + index] = code;
  else bytes[base + (index >> 1)]! |= code << ((index & 1) * 4);
}

function getCode(bytes: Uint8Array, base: number, index: number, bits: QuantBits): number {
  if (bits === 8) return bytes[base + index]!;
  return (bytes[base + (index >> 1)]! >> ((index & 1) * 4)) & 0xf;
}
