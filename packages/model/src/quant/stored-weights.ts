/**
 * Reading a model dir's weights back as what `writeModelDir` takes, whatever their
 * precision: fp32 tensors as values, quantized ones as their codes, scales and zero
 * points (so a derived model carries them over bit for bit, never requantized).
 */
import { open } from 'node:fs/promises';
import {
  ModelDirInvalidError,
  QuantizationUnsupportedError,
  type WeightTensor,
} from '@swarmbee/core';
import { findTensor, type LlamaModelDir, type TensorValues } from '../model-dir.js';
import type { QuantizedMatrix } from './block-quant.js';
import type { QuantizedTensorValues } from './stored-tensors.js';

async function readBytes(dir: LlamaModelDir, tensor: WeightTensor): Promise<Uint8Array> {
  const handle = await open(dir.weightsPath, 'r');
  try {
    // A fresh buffer per tensor: Float32Array views over it are then always aligned.
    const out = new Uint8Array(new ArrayBuffer(tensor.bytes));
    const { bytesRead } = await handle.read(out, 0, tensor.bytes, tensor.offset);
    if (bytesRead !== tensor.bytes) {
      throw new ModelDirInvalidError(
        `${dir.weightsPath} ends inside tensor ${tensor.name} (read ${bytesRead} of ${tensor.bytes} bytes)`,
      );
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** A stored quantized weight: its codes, scales and zero points as written. */
export async function readQuantizedWeight(
  dir: LlamaModelDir,
  name: string,
): Promise<QuantizedTensorValues> {
  const tensor = findTensor(dir, name);
  const q = tensor.quantization;
  if (!q) throw new ModelDirInvalidError(`${dir.path}: tensor ${name} is not quantized`);
  const scaleBytes = await readBytes(dir, findTensor(dir, q.scales));
  const matrix: QuantizedMatrix = {
    bits: q.bits,
    blockSize: q.blockSize,
    rows: q.shape[0],
    cols: q.shape[1],
    codes: await readBytes(dir, tensor),
    scales: new Float32Array(scaleBytes.buffer, 0, scaleBytes.byteLength / 4),
    zeroPoints: await readBytes(dir, findTensor(dir, q.zeroPoints)),
  };
  return { kind: 'quantized', matrix, activations: q.activations };
}

/** fp32 bytes read at a time by {@link streamTensor}. */
export const TENSOR_CHUNK_BYTES = 4 * 1024 * 1024;

/** One fp32 tensor's values in chunks of at most {@link TENSOR_CHUNK_BYTES}: never the whole tensor. */
export async function* streamTensor(
  dir: LlamaModelDir,
  name: string,
  chunkBytes: number = TENSOR_CHUNK_BYTES,
): AsyncGenerator<Float32Array> {
  const tensor = findTensor(dir, name);
  if (tensor.dtype !== 'float32')
    throw new QuantizationUnsupportedError(
      `${dir.path}: tensor ${name} is ${tensor.dtype}; streaming it needs fp32 weights`,
    );
  const handle = await open(dir.weightsPath, 'r');
  try {
    for (let at = 0; at < tensor.bytes; at += chunkBytes) {
      const length = Math.min(chunkBytes, tensor.bytes - at);
      const chunk = new Float32Array(length / 4);
      const { bytesRead } = await handle.read(
        new Uint8Array(chunk.buffer),
        0,
        length,
        tensor.offset + at,
      );
      if (bytesRead !== length)
        throw new ModelDirInvalidError(
          `${dir.weightsPath} ends inside tensor ${name} (read ${at + bytesRead} of ${tensor.bytes} bytes)`,
        );
      yield chunk;
    }
  } finally {
    await handle.close();
  }
}

/** A weight as stored: fp32 values streamed, or (when quantized) the quantized payload unchanged. */
export async function readStoredWeight(dir: LlamaModelDir, name: string): Promise<TensorValues> {
  if (findTensor(dir, name).quantization) return readQuantizedWeight(dir, name);
  return streamTensor(dir, name);
}

/** Whether a weight is stored quantized. */
export function isQuantizedWeight(dir: LlamaModelDir, name: string): boolean {
  return findTensor(dir, name).quantization !== undefined;
}
