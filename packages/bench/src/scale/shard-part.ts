/**
 * Shard build: the shards of a two-stage split, written from each model dir as the
 * coordinator writes them for its workers (`writeShard`): the first holds the embedding,
 * the second the tied head's copy of it, so each carries the model's largest tensor.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { evenRanges, HF_SYNTH_SHAPES } from '@swarmbee/model';
import type { ScalePart, ScaleRow } from './part.js';
import { runStep } from './step.js';

export const shardPart: ScalePart = {
  name: 'shard',
  async run(shape, context) {
    const layers = HF_SYNTH_SHAPES[shape.shape].config.num_hidden_layers;
    const dirs: [string, string | undefined][] = [
      ['fp32', shape.fp32],
      ['int8', shape.quantized[8]],
      ['int4', shape.quantized[4]],
    ];
    const rows: ScaleRow[] = [];
    for (const [precision, model] of dirs) {
      if (!model) continue;
      for (const range of evenRanges(layers, 2)) {
        context.progress(`scale: ${shape.shape} ${precision} shard [${range.start}, ${range.end})`);
        const out = join(shape.root, `shard-${precision}-${range.start}-${range.end}`);
        const measurement = await runStep({ kind: 'shard', model, range, out });
        await rm(out, { recursive: true, force: true });
        rows.push({
          shape: shape.shape,
          step: 'shard build',
          detail: `${precision} [${range.start}, ${range.end})`,
          measurement,
        });
      }
    }
    return rows;
  },
};
