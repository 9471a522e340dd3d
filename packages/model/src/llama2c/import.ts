/** `swarmbee model import llama2c`: a v0 checkpoint plus tokenizer into a model dir. */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { headDim, TokenizerMissingError } from '@swarmbee/core';
import { sha256File } from '../hash.js';
import {
  CLASSIFIER,
  FINAL_NORM,
  interleavedToRotateHalf,
  layerTensor,
  TOKEN_EMBEDDING,
} from '../llama-tensors.js';
import { type LlamaModelDir, writeModelDir } from '../model-dir.js';
import type { ProgressFn } from '../progress.js';
import { Llama2cTokenizer } from '../tokenizer/llama2c-tokenizer.js';
import { type Llama2cBlock, readLlama2cLayout } from './checkpoint.js';

export interface ImportLlama2cOptions {
  checkpoint: string;
  /** llama2.c tokenizer file (`tokenizer.bin`, `tok512.bin`); required to generate from text. */
  tokenizer: string | undefined;
  out: string;
  /** Model name in the manifest; default: the checkpoint's file name without extension. */
  name?: string;
  progress?: ProgressFn;
}

export async function importLlama2c(options: ImportLlama2cOptions): Promise<LlamaModelDir> {
  const layout = await readLlama2cLayout(options.checkpoint);
  const { config } = layout;
  if (!options.tokenizer) {
    throw new TokenizerMissingError(
      `importing ${options.checkpoint} needs its llama2.c tokenizer: pass --tokenizer (e.g. tokenizer.bin or tok512.bin)`,
    );
  }
  const tokenizer = await Llama2cTokenizer.load(options.tokenizer, config.vocabSize);
  const handle = await open(options.checkpoint, 'r');
  const read = async (offset: number, elements: number) => {
    const out = new Float32Array(elements);
    await handle.read(new Uint8Array(out.buffer), 0, elements * 4, offset);
    return out;
  };
  const block = (name: Llama2cBlock, layer: number) => {
    const { offset, perLayer } = layout.blocks[name];
    return read(offset + layer * perLayer * 4, perLayer);
  };
  const hd = headDim(config);
  try {
    return await writeModelDir(options.out, {
      name: options.name ?? basename(options.checkpoint).replace(/\.[^.]+$/, ''),
      config,
      source: {
        kind: 'llama2c',
        checkpoint: basename(options.checkpoint),
        checkpointSha256: await sha256File(options.checkpoint),
      },
      tokenizer: tokenizer.vocab(),
      progress: options.progress,
      tensors: async (spec) => {
        if (spec.name === TOKEN_EMBEDDING)
          return read(layout.tokenEmbedding.offset, layout.tokenEmbedding.elements);
        if (spec.name === FINAL_NORM)
          return read(layout.finalNorm.offset, layout.finalNorm.elements);
        if (spec.name === CLASSIFIER && layout.classifier) {
          return read(layout.classifier.offset, layout.classifier.elements);
        }
        const layer = spec.part as number;
        switch (spec.name) {
          case layerTensor.attnNorm(layer):
            return block('attnNorm', layer);
          case layerTensor.wqkv(layer):
            return concat(
              interleavedToRotateHalf(await block('wq', layer), config.nHeads, hd, config.dim),
              interleavedToRotateHalf(await block('wk', layer), config.nKvHeads, hd, config.dim),
              await block('wv', layer),
            );
          case layerTensor.wo(layer):
            return block('wo', layer);
          case layerTensor.ffnNorm(layer):
            return block('ffnNorm', layer);
          case layerTensor.w13(layer):
            return concat(await block('w1', layer), await block('w3', layer));
          case layerTensor.w2(layer):
            return block('w2', layer);
        }
        throw new Error(`no llama2.c source for tensor ${spec.name}`);
      },
    });
  } finally {
    await handle.close();
  }
}

export function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
