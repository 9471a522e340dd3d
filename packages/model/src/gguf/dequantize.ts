/**
 * ggml's dequantization, bit for bit: every block type SwarmBee reads, decoded to the
 * same float32 values ggml's `dequantize_row_*` (and gguf-py's `gguf.quants.dequantize`)
 * give. Each product and sum is rounded to float32 in ggml's order (`d * sc` first, then
 * `× q`, then `− m`), which is what makes the values equal, not merely close.
 *
 * Block layouts (ggml-common.h), K-quants in super-blocks of 256:
 * Q4_0 d q[16]; Q4_1 d m q[16]; Q5_0 d qh[4] q[16]; Q5_1 d m qh[4] q[16]; Q8_0 d q[32];
 * Q2_K scales[16] q[64] d dmin; Q3_K hmask[32] q[64] scales[12] d; Q4_K d dmin scales[12]
 * q[128]; Q5_K d dmin scales[12] qh[32] q[128]; Q6_K ql[128] qh[64] scales[16] d;
 * Q8_K d(f32) q[256] bsums[16]. `d`, `dmin` and `m` are fp16 unless said otherwise.
 */
import type { GgmlTypeName } from '@swarmbee/core';
import { ggmlTypeByName } from './ggml-types.js';

const f = Math.fround;

/** fp16 bit pattern → its float32 value (exact: every fp16 is a float32). */
export const FP16_TO_FP32: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

const half = (b: Uint8Array, at: number) => FP16_TO_FP32[b[at]! | (b[at + 1]! << 8)]!;
const int8 = (byte: number) => (byte << 24) >> 24;

type BlockDecoder = (b: Uint8Array, at: number, y: Float32Array, out: number) => void;

const q4_0: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 2 + j]!;
    y[out + j] = f(((q & 0xf) - 8) * d);
    y[out + j + 16] = f(((q >> 4) - 8) * d);
  }
};

const q4_1: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  const m = half(b, at + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 4 + j]!;
    y[out + j] = f(f((q & 0xf) * d) + m);
    y[out + j + 16] = f(f((q >> 4) * d) + m);
  }
};

/** The 5-bit codes of a Q5_0/Q5_1 block: low nibbles at `qs`, fifth bits in the u32 at `qh`. */
function fiveBitCode(b: Uint8Array, qh: number, qs: number, j: number): number {
  const high = (b[qh + (j >> 3)]! >> (j & 7)) & 1;
  const low = j < 16 ? b[qs + j]! & 0xf : b[qs + j - 16]! >> 4;
  return low | (high << 4);
}

const q5_0: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  for (let j = 0; j < 32; j++) y[out + j] = f((fiveBitCode(b, at + 2, at + 6, j) - 16) * d);
};

const q5_1: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  const m = half(b, at + 2);
  for (let j = 0; j < 32; j++) y[out + j] = f(f(fiveBitCode(b, at + 4, at + 8, j) * d) + m);
};

const q8_0: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  for (let j = 0; j < 32; j++) y[out + j] = f(int8(b[at + 2 + j]!) * d);
};

const q2_K: BlockDecoder = (b, at, y, out) => {
  const qs = at + 16;
  const d = half(b, at + 80);
  const dmin = half(b, at + 82);
  for (let e = 0; e < 256; e++) {
    const sc = b[at + (e >> 4)]!;
    const dl = f(d * (sc & 0xf));
    const ml = f(dmin * (sc >> 4));
    const q = (b[qs + (e >> 7) * 32 + (e & 31)]! >> (((e >> 5) & 3) * 2)) & 3;
    y[out + e] = f(f(dl * q) - ml);
  }
};

/** The sixteen signed 6-bit scales of a Q3_K block (12 bytes at `at`), each minus 32. */
function q3Scales(b: Uint8Array, at: number): Int8Array {
  const scales = new Int8Array(16);
  for (let i = 0; i < 16; i++) {
    const low = (b[at + (i & 7)]! >> ((i >> 3) * 4)) & 0xf;
    const high = (b[at + 8 + (i & 3)]! >> ((i >> 2) * 2)) & 3;
    scales[i] = (low | (high << 4)) - 32;
  }
  return scales;
}

/** A Q3_K weight's code in 0..7: two low bits from `qs`, the third from `hmask` (set means +4). */
export function q3Code(b: Uint8Array, at: number, e: number): number {
  const low = (b[at + 32 + (e >> 7) * 32 + (e & 31)]! >> (((e >> 5) & 3) * 2)) & 3;
  const high = (b[at + (e & 31)]! >> (e >> 5)) & 1;
  return low | (high << 2);
}

const q3_K: BlockDecoder = (b, at, y, out) => {
  const scales = q3Scales(b, at + 96);
  const d = half(b, at + 108);
  for (let e = 0; e < 256; e++) {
    const dl = f(d * scales[e >> 4]!);
    y[out + e] = f(dl * (q3Code(b, at, e) - 4));
  }
};

/** The 6-bit scale and min of sub-block `j` (0..7) of a Q4_K/Q5_K block (12 bytes at `at`). */
function kScaleMin(b: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [b[at + j]! & 63, b[at + j + 4]! & 63];
  const packed = b[at + j + 4]!;
  return [(packed & 0xf) | ((b[at + j - 4]! >> 6) << 4), (packed >> 4) | ((b[at + j]! >> 6) << 4)];
}

const q4_K: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  const dmin = half(b, at + 2);
  const qs = at + 16;
  for (let j = 0; j < 8; j++) {
    const [sc, m] = kScaleMin(b, at + 4, j);
    const dl = f(d * sc);
    const ml = f(dmin * m);
    const base = qs + (j >> 1) * 32;
    const shift = (j & 1) * 4;
    for (let l = 0; l < 32; l++)
      y[out + j * 32 + l] = f(f(dl * ((b[base + l]! >> shift) & 0xf)) - ml);
  }
};

const q5_K: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at);
  const dmin = half(b, at + 2);
  const qh = at + 16;
  const qs = at + 48;
  for (let j = 0; j < 8; j++) {
    const [sc, m] = kScaleMin(b, at + 4, j);
    const dl = f(d * sc);
    const ml = f(dmin * m);
    const base = qs + (j >> 1) * 32;
    const shift = (j & 1) * 4;
    for (let l = 0; l < 32; l++) {
      const q = ((b[base + l]! >> shift) & 0xf) | (((b[qh + l]! >> j) & 1) << 4);
      y[out + j * 32 + l] = f(f(dl * q) - ml);
    }
  }
};

/** A Q6_K weight's code in 0..63 (the value is `d · scale · (code − 32)`). */
export function q6Code(b: Uint8Array, at: number, e: number): number {
  const half128 = e >> 7;
  const within = e & 127;
  const low = (b[at + half128 * 64 + (within & 63)]! >> ((within >> 6) * 4)) & 0xf;
  const high = (b[at + 128 + half128 * 32 + (within & 31)]! >> ((within >> 5) * 2)) & 3;
  return low | (high << 4);
}

const q6_K: BlockDecoder = (b, at, y, out) => {
  const d = half(b, at + 208);
  for (let e = 0; e < 256; e++) {
    const dl = f(d * int8(b[at + 192 + (e >> 4)]!));
    y[out + e] = f(dl * (q6Code(b, at, e) - 32));
  }
};

const q8_K: BlockDecoder = (b, at, y, out) => {
  const d = new DataView(b.buffer, b.byteOffset + at, 4).getFloat32(0, true);
  for (let e = 0; e < 256; e++) y[out + e] = f(d * int8(b[at + 4 + e]!));
};

const DECODERS: Record<Exclude<GgmlTypeName, 'F32' | 'F16' | 'BF16'>, BlockDecoder> = {
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q5_0: q5_0,
  Q5_1: q5_1,
  Q8_0: q8_0,
  Q2_K: q2_K,
  Q3_K: q3_K,
  Q4_K: q4_K,
  Q5_K: q5_K,
  Q6_K: q6_K,
  Q8_K: q8_K,
};

/**
 * Dequantizes whole blocks of `type` from `bytes` (the tensor's data, or a piece of it
 * starting at a block) into `out`, or a new array. Returns the values.
 */
export function dequantize(
  type: GgmlTypeName,
  bytes: Uint8Array,
  out?: Float32Array,
): Float32Array {
  const info = ggmlTypeByName(type);
  const blocks = bytes.length / info.blockBytes;
  if (!Number.isInteger(blocks))
    throw new RangeError(
      `${bytes.length} bytes are not whole ${type} blocks of ${info.blockBytes}`,
    );
  const y = out ?? new Float32Array(blocks * info.blockWeights);
  if (type === 'F32') {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < blocks; i++) y[i] = view.getFloat32(i * 4, true);
  } else if (type === 'F16') {
    for (let i = 0; i < blocks; i++) y[i] = half(bytes, i * 2);
  } else if (type === 'BF16') {
    const bits = new Uint32Array(y.buffer, y.byteOffset, blocks);
    for (let i = 0; i < blocks; i++) bits[i] = (bytes[i * 2]! | (bytes[i * 2 + 1]! << 8)) << 16;
  } else {
    const decode = DECODERS[type];
    for (let i = 0; i < blocks; i++) decode(bytes, i * info.blockBytes, y, i * info.blockWeights);
  }
  return y;
}
