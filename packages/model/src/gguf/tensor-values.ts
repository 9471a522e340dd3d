/**
 * A planned tensor's values, read by offset from the GGUF file: fp32 streamed in pieces of
 * rows (dequantized exactly on the way), or a quantized matrix — mapped without loss where
 * the type allows, re-quantized otherwise — with a record of where each part came from and,
 * for re-quantized parts, the error that added against ggml's values.
 */
import type { FileHandle } from 'node:fs/promises';
import type {
  GgufConversion,
  GgufTensorOrigin,
  RequantizationError,
  WeightQuantization,
} from '@swarmbee/core';
import { interleavedToRotateHalf } from '../llama-tensors.js';
import type { TensorValues } from '../model-dir.js';
import {
  dequantizeBlockwise,
  type QuantizedMatrix,
  quantizeBlockwise,
} from '../quant/block-quant.js';
import { reorderQuantizedRows, reshapeQuantized, stackQuantized } from '../quant/matrix-ops.js';
import { dequantize } from './dequantize.js';
import { readTensorBytes, readTensorRows } from './gguf-file.js';
import { mapsLosslessly, mapToMatMulNBits } from './nbits-mapping.js';
import type { GgufPart, PlannedTensor } from './tensor-plan.js';

export interface TensorConversion {
  values: TensorValues;
  origin: GgufTensorOrigin;
}

export async function convertTensor(
  handle: FileHandle,
  planned: PlannedTensor,
  activations: WeightQuantization['activations'],
): Promise<TensorConversion> {
  const { spec, parts, format } = planned;
  if (format.kind === 'fp32') {
    return {
      values: fp32Rows(handle, parts),
      origin: {
        name: spec.name,
        stored: 'fp32',
        from: parts.map((p) => ({
          name: p.tensor.name,
          type: p.type,
          conversion: p.type === 'F32' ? 'copied' : 'dequantized',
        })),
      },
    };
  }
  const from: GgufTensorOrigin['from'] = [];
  const matrices: QuantizedMatrix[] = [];
  for (const part of parts) {
    const bytes = await readTensorBytes(handle, part.tensor);
    let matrix: QuantizedMatrix;
    let conversion: GgufConversion;
    let error: RequantizationError | undefined;
    if (mapsLosslessly(part.type)) {
      matrix = reshapeQuantized(
        mapToMatMulNBits(part.type, bytes, part.rows, part.cols),
        format.bits,
        format.blockSize,
      );
      conversion = 'mapped';
    } else {
      const exact = dequantize(part.type, bytes);
      matrix = quantizeBlockwise(exact, part.rows, part.cols, format.bits, format.blockSize);
      error = requantizationError(exact, dequantizeBlockwise(matrix));
      conversion = 'requantized';
    }
    if (part.permuteHeads)
      matrix = reorderQuantizedRows(
        matrix,
        headPermutation(part.permuteHeads, part.rows / part.permuteHeads),
      );
    matrices.push(matrix);
    from.push({ name: part.tensor.name, type: part.type, conversion, ...(error ? { error } : {}) });
  }
  return {
    values: { kind: 'quantized', matrix: stackQuantized(matrices), activations },
    origin: {
      name: spec.name,
      stored: format.bits === 8 ? 'int8' : 'int4',
      blockSize: format.blockSize,
      from,
    },
  };
}

/** Row `i` of the rotate-half layout is row `order[i]` of llama.cpp's interleaved one. */
export function headPermutation(heads: number, hd: number): number[] {
  const order = new Array<number>(heads * hd);
  const half = hd / 2;
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < half; j++)
      for (let p = 0; p < 2; p++) order[h * hd + p * half + j] = h * hd + 2 * j + p;
  return order;
}

/** The parts' rows as fp32, streamed; parts whose rows are permuted are read whole. */
async function* fp32Rows(handle: FileHandle, parts: GgufPart[]): AsyncGenerator<Float32Array> {
  for (const part of parts) {
    if (part.permuteHeads) {
      const values = dequantize(part.type, await readTensorBytes(handle, part.tensor));
      yield interleavedToRotateHalf(
        values,
        part.permuteHeads,
        part.rows / part.permuteHeads,
        part.cols,
      );
      continue;
    }
    for await (const piece of readTensorRows(handle, part.tensor))
      yield dequantize(part.type, piece);
  }
}

export function requantizationError(
  exact: Float32Array,
  stored: Float32Array,
): RequantizationError {
  let maxAbs = 0;
  let squared = 0;
  let signal = 0;
  for (let i = 0; i < exact.length; i++) {
    const d = Math.abs(stored[i]! - exact[i]!);
    if (d > maxAbs) maxAbs = d;
    squared += d * d;
    signal += exact[i]! * exact[i]!;
  }
  const rms = Math.sqrt(squared / exact.length);
  return { maxAbs, rms, relativeRms: signal > 0 ? rms / Math.sqrt(signal / exact.length) : 0 };
}
