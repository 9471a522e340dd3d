/**
 * How a quantized linear weight is stored in a model dir: three tensors — the codes under
 * the weight's canonical name, then `<name>.scales` and `<name>.zero_points` — each
 * page-aligned and adjacent, so the layer stays one contiguous span of `weights.bin`.
 */
import {
  QuantizationUnsupportedError,
  type WeightQuantization,
  type WeightTensor,
} from '@swarmbee/core';
import type { TensorSpec } from '../llama-tensors.js';
import type { TensorValues } from '../model-dir.js';
import { type QuantizedMatrix, quantizedLayout } from './block-quant.js';

/**
 * A linear weight given already quantized: it is written as three tensors — the codes
 * under the spec's name, then `<name>.scales` and `<name>.zero_points` — each
 * page-aligned, so the layer stays one contiguous span.
 */
export interface QuantizedTensorValues {
  kind: 'quantized';
  matrix: QuantizedMatrix;
  activations: WeightQuantization['activations'];
}

/** Name of the scales tensor that goes with a quantized weight. */
export const quantScalesName = (weight: string) => `${weight}.scales`;
/** Name of the zero-points tensor that goes with a quantized weight. */
export const quantZeroPointsName = (weight: string) => `${weight}.zero_points`;

export function isQuantized(data: TensorValues): data is QuantizedTensorValues {
  return !(data instanceof Float32Array) && 'kind' in data && data.kind === 'quantized';
}

/** The three tensors of a quantized weight, in storage order, with their bytes. */
export function quantizedTensors(
  spec: TensorSpec,
  data: QuantizedTensorValues,
): { entry: Omit<WeightTensor, 'offset' | 'bytes'>; bytes: Uint8Array }[] {
  const { matrix } = data;
  if (spec.shape.length !== 2 || spec.shape[0] !== matrix.rows || spec.shape[1] !== matrix.cols) {
    throw new QuantizationUnsupportedError(
      `tensor ${spec.name} is [${spec.shape.join(', ')}]; a quantized [${matrix.rows}, ${matrix.cols}] matrix was given for it`,
    );
  }
  const layout = quantizedLayout(matrix.rows, matrix.cols, matrix.bits, matrix.blockSize);
  const quantization: WeightQuantization = {
    bits: matrix.bits,
    blockSize: matrix.blockSize,
    shape: [matrix.rows, matrix.cols],
    scales: quantScalesName(spec.name),
    zeroPoints: quantZeroPointsName(spec.name),
    activations: data.activations,
  };
  const raw = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return [
    {
      entry: { name: spec.name, dtype: 'uint8', shape: layout.codesShape, quantization },
      bytes: matrix.codes,
    },
    {
      entry: { name: quantization.scales, dtype: 'float32', shape: layout.scalesShape },
      bytes: raw(matrix.scales),
    },
    {
      entry: { name: quantization.zeroPoints, dtype: 'uint8', shape: layout.zeroPointsShape },
      bytes: matrix.zeroPoints,
    },
  ];
}
