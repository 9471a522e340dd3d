/**
 * Import: the bf16 checkpoint into an fp32 model dir (`model import hf`), or straight to
 * int4 (`model import hf --bits 4`) where the disk cannot hold the fp32 dir.
 */
import { join } from 'node:path';
import type { ScalePart } from './part.js';
import { runStep } from './step.js';

export const importPart: ScalePart = {
  name: 'import',
  async run(shape, context) {
    context.progress(`scale: importing ${shape.shape}`);
    const out = join(shape.root, 'fp32');
    const measurement = await runStep({
      kind: 'import',
      checkpoint: shape.checkpoint,
      inBytes: shape.checkpointBytes,
      out,
    });
    shape.fp32 = out;
    return [{ shape: shape.shape, step: 'import', detail: 'bf16 → fp32', measurement }];
  },
};

export const importInt4Part: ScalePart = {
  name: 'import int4',
  async run(shape, context) {
    context.progress(`scale: importing ${shape.shape} straight to int4`);
    const out = join(shape.root, 'int4');
    const measurement = await runStep({
      kind: 'import',
      checkpoint: shape.checkpoint,
      inBytes: shape.checkpointBytes,
      out,
      bits: 4,
    });
    shape.quantized[4] = out;
    return [{ shape: shape.shape, step: 'import', detail: 'bf16 → int4', measurement }];
  },
};
