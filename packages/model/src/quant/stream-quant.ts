/**
 * Quantizing a matrix as its rows stream in: rows are quantized independently (blocks
 * run along a row), so a batch of rows is gathered from the fp32 chunks, quantized into
 * its place in the output, and dropped. Memory: the quantized output plus one batch of
 * {@link QUANT_BATCH_BYTES}, never the fp32 matrix.
 */
import { QuantizationUnsupportedError } from '@swarmbee/core';
import {
  type QuantBits,
  type QuantizedMatrix,
  quantizeBlockwise,
  quantizedLayout,
} from './block-quant.js';

/** fp32 bytes of rows gathered before quantizing them. */
export const QUANT_BATCH_BYTES = 8 * 1024 * 1024;

export async function quantizeStreamed(
  source: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  rows: number,
  cols: number,
  bits: QuantBits,
  blockSize: number,
): Promise<QuantizedMatrix> {
  const { blocks, blockBytes, zeroPointBytesPerRow } = quantizedLayout(rows, cols, bits, blockSize);
  const codes = new Uint8Array(rows * blocks * blockBytes);
  const scales = new Float32Array(rows * blocks);
  const zeroPoints = new Uint8Array(rows * zeroPointBytesPerRow);
  const batchRows = Math.max(1, Math.min(rows, Math.floor(QUANT_BATCH_BYTES / (4 * cols))));
  const batch = new Float32Array(batchRows * cols);
  let filled = 0;
  let row = 0;
  const flush = () => {
    const n = filled / cols;
    const part = quantizeBlockwise(batch.subarray(0, filled), n, cols, bits, blockSize);
    codes.set(part.codes, row * blocks * blockBytes);
    scales.set(part.scales, row * blocks);
    zeroPoints.set(part.zeroPoints, row * zeroPointBytesPerRow);
    row += n;
    filled = 0;
  };
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      if (row * cols + filled + (chunk.length - at) > rows * cols)
        throw new QuantizationUnsupportedError(
          `a [${rows}, ${cols}] matrix was given more than ${rows * cols} values`,
        );
      const take = Math.min(batch.length - filled, chunk.length - at);
      batch.set(chunk.subarray(at, at + take), filled);
      filled += take;
      at += take;
      if (filled === batch.length) flush();
    }
  }
  if (filled % cols !== 0 || row + filled / cols !== rows)
    throw new QuantizationUnsupportedError(
      `a [${rows}, ${cols}] matrix needs ${rows * cols} values, got ${row * cols + filled}`,
    );
  if (filled > 0) flush();
  return { bits, blockSize, rows, cols, codes, scales, zeroPoints };
}
