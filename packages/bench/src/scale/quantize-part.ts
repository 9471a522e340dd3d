/**
 * Quantize: the fp32 model dir to int4 and int8 (`optimize quantize --head`, every layer and
 * the LM head, block 32): an fp32 head over a Llama 3 vocabulary (128 256 × dim) would be most
 * of a last stage's memory.
 */
import { join } from 'node:path';
import type { ScalePart, ScaleRow } from './part.js';
import { runStep } from './step.js';

export const SCALE_QUANT_BITS = [4, 8] as const;

export const quantizePart: ScalePart = {
  name: 'quantize',
  async run(shape, context) {
    if (!shape.fp32) throw new Error('internal: the quantize part runs after the import part');
    const rows: ScaleRow[] = [];
    for (const bits of context.quick ? [4 as const] : SCALE_QUANT_BITS) {
      context.progress(`scale: quantizing ${shape.shape} to int${bits}`);
      const out = join(shape.root, `int${bits}`);
      const measurement = await runStep({
        kind: 'quantize',
        model: shape.fp32,
        bits,
        head: true,
        out,
      });
      shape.quantized[bits] = out;
      rows.push({
        shape: shape.shape,
        step: 'quantize',
        detail: `fp32 → int${bits} (head too)`,
        measurement,
      });
    }
    return rows;
  },
};
