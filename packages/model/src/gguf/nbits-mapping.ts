/**
 * ggml block types that are already "codes times a per-block scale, minus an integer zero
 * point", carried into onnxruntime's MatMulNBits layout unchanged: the same scales (fp16
 * widened to fp32, which is exact; sub-block scales `d · sc` computed in fp32 as ggml does),
 * the same codes, and the implicit offset as an integer zero point. MatMulNBits
 * dequantizes `(code − zero point) × scale` in fp32, so every weight comes out as the very
 * float ggml's `dequantize_row_*` gives.
 *
 * | ggml | MatMulNBits | zero point |
 * |---|---|---|
 * | Q4_0 (`d·(q−8)`, q 4-bit) | int4, block 32 | 8 |
 * | Q8_0 (`d·q`, q int8) | int8, block 32 | 128 (codes are q + 128) |
 * | Q5_0 (`d·(q−16)`, q 5-bit) | int8, block 32 | 16 |
 * | Q3_K (`d·sc·(q−4)`, q 3-bit, 16 sub-blocks of 16) | int4, block 16 | 4 |
 * | Q6_K (`d·sc·(q−32)`, q 6-bit, 16 sub-blocks of 16) | int8, block 16 | 32 |
 * | Q8_K (`d·q`, d fp32, q int8) | int8, block 256 | 128 |
 *
 * Q4_0 packs weight j and j + 16 of a block into one byte; MatMulNBits packs consecutive
 * weights, so the nibbles are re-paired. Types with an additive minimum (Q4_1, Q5_1, Q2_K,
 * Q4_K, Q5_K) have no integer zero point and are not mapped here.
 */
import type { GgmlTypeName } from '@swarmbee/core';
import { type QuantBits, type QuantizedMatrix, quantizedLayout } from '../quant/block-quant.js';
import { FP16_TO_FP32, q3Code, q6Code } from './dequantize.js';
import { ggmlTypeByName } from './ggml-types.js';

interface Mapping {
  bits: QuantBits;
  blockSize: number;
  zeroPoint: number;
  /** Scale of sub-block `s` (0-based within the ggml block at `at`). */
  scale: (b: Uint8Array, at: number, s: number) => number;
  /** Code of weight `e` of the ggml block at `at`. */
  code: (b: Uint8Array, at: number, e: number) => number;
}

const half = (b: Uint8Array, at: number) => FP16_TO_FP32[b[at]! | (b[at + 1]! << 8)]!;
const int8 = (byte: number) => (byte << 24) >> 24;

const MAPPINGS: Partial<Record<GgmlTypeName, Mapping>> = {
  Q4_0: {
    bits: 4,
    blockSize: 32,
    zeroPoint: 8,
    scale: (b, at) => half(b, at),
    code: (b, at, e) => (e < 16 ? b[at + 2 + e]! & 0xf : b[at + 2 + e - 16]! >> 4),
  },
  Q8_0: {
    bits: 8,
    blockSize: 32,
    zeroPoint: 128,
    scale: (b, at) => half(b, at),
    code: (b, at, e) => int8(b[at + 2 + e]!) + 128,
  },
  Q5_0: {
    bits: 8,
    blockSize: 32,
    zeroPoint: 16,
    scale: (b, at) => half(b, at),
    code: (b, at, e) => {
      const high = (b[at + 2 + (e >> 3)]! >> (e & 7)) & 1;
      const low = e < 16 ? b[at + 6 + e]! & 0xf : b[at + 6 + e - 16]! >> 4;
      return low | (high << 4);
    },
  },
  Q3_K: {
    bits: 4,
    blockSize: 16,
    zeroPoint: 4,
    scale: (b, at, s) => {
      const low = (b[at + 96 + (s & 7)]! >> ((s >> 3) * 4)) & 0xf;
      const high = (b[at + 104 + (s & 3)]! >> ((s >> 2) * 2)) & 3;
      return Math.fround(half(b, at + 108) * ((low | (high << 4)) - 32));
    },
    code: q3Code,
  },
  Q6_K: {
    bits: 8,
    blockSize: 16,
    zeroPoint: 32,
    scale: (b, at, s) => Math.fround(half(b, at + 208) * int8(b[at + 192 + s]!)),
    code: q6Code,
  },
  Q8_K: {
    bits: 8,
    blockSize: 256,
    zeroPoint: 128,
    scale: (b, at) => new DataView(b.buffer, b.byteOffset + at, 4).getFloat32(0, true),
    code: (b, at, e) => int8(b[at + 4 + e]!) + 128,
  },
};

/** Whether a ggml type maps onto MatMulNBits without loss. */
export function mapsLosslessly(type: GgmlTypeName): boolean {
  return MAPPINGS[type] !== undefined;
}

/** The bits and block size a losslessly mapped type becomes. */
export function losslessFormat(
  type: GgmlTypeName,
): { bits: QuantBits; blockSize: number } | undefined {
  const m = MAPPINGS[type];
  return m && { bits: m.bits, blockSize: m.blockSize };
}

/**
 * A `[rows, cols]` matrix of ggml `type` (its raw tensor bytes, rows of whole blocks) as
 * MatMulNBits codes, scales and zero points.
 */
export function mapToMatMulNBits(
  type: GgmlTypeName,
  bytes: Uint8Array,
  rows: number,
  cols: number,
): QuantizedMatrix {
  const m = MAPPINGS[type];
  if (!m) throw new Error(`internal: ${type} has no lossless MatMulNBits mapping`);
  const info = ggmlTypeByName(type);
  const { bits, blockSize } = m;
  const layout = quantizedLayout(rows, cols, bits, blockSize);
  const codes = new Uint8Array(rows * layout.blocks * layout.blockBytes);
  const scales = new Float32Array(rows * layout.blocks);
  const zeroPoints = new Uint8Array(rows * layout.zeroPointBytesPerRow);
  const subBlocks = info.blockWeights / blockSize;
  const ggmlBlocksPerRow = cols / info.blockWeights;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ggmlBlocksPerRow; g++) {
      const at = (r * ggmlBlocksPerRow + g) * info.blockBytes;
      for (let s = 0; s < subBlocks; s++) {
        const block = g * subBlocks + s;
        scales[r * layout.blocks + block] = m.scale(bytes, at, s);
        const zpByte = r * layout.zeroPointBytesPerRow + (bits === 8 ? block : block >> 1);
        zeroPoints[zpByte]! |= bits === 8 ? m.zeroPoint : m.zeroPoint << ((block & 1) * 4);
        const base = (r * layout.blocks + block) * layout.blockBytes;
        for (let j = 0; j < blockSize; j++) {
          const value = m.code(bytes, at, s * blockSize + j);
          if (bits === 8) codes[base + j] = value;
          else codes[base + (j >> 1)]! |= value << ((j & 1) * 4);
        }
      }
    }
  }
  return { bits, blockSize, rows, cols, codes, scales, zeroPoints };
}
