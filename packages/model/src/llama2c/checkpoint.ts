/**
 * llama2.c "version 0" checkpoints: seven int32 header fields, then fp32 weights
 * in run.c's order. A negative vocab size means the classifier is stored
 * separately; positive means it shares the token embedding.
 */
import { open, stat } from 'node:fs/promises';
import { CheckpointInvalidError, type LlamaConfig } from '@swarmbee/core';

export const LLAMA2C_HEADER_BYTES = 7 * 4;

/** llama2.c's fixed hyper-parameters that its header does not carry. */
export const LLAMA2C_NORM_EPS = 1e-5;
export const LLAMA2C_ROPE_THETA = 10_000;

/** Where each tensor of a v0 checkpoint lives: offsets in bytes, shapes per layer. */
export interface Llama2cLayout {
  config: LlamaConfig;
  /** Byte offset of each all-layers block, and the per-layer element count. */
  blocks: Record<Llama2cBlock, { offset: number; perLayer: number }>;
  tokenEmbedding: { offset: number; elements: number };
  finalNorm: { offset: number; elements: number };
  /** Absent when the classifier shares the token embedding. */
  classifier?: { offset: number; elements: number };
  totalBytes: number;
}

export type Llama2cBlock = 'attnNorm' | 'wq' | 'wk' | 'wv' | 'wo' | 'ffnNorm' | 'w1' | 'w2' | 'w3';

const BLOCK_ORDER: Llama2cBlock[] = [
  'attnNorm',
  'wq',
  'wk',
  'wv',
  'wo',
  'ffnNorm',
  'w1',
  'w2',
  'w3',
];

function fail(path: string, why: string): never {
  throw new CheckpointInvalidError(`${path}: not a valid llama2.c checkpoint: ${why}`);
}

/** Decodes and checks the header, then computes where every tensor must be. */
export function llama2cLayout(header: Int32Array, path: string): Llama2cLayout {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = Array.from(header);
  const fields = { dim, hiddenDim, nLayers, nHeads, nKvHeads, seqLen };
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value <= 0 || value > 1 << 20) {
      fail(path, `header field ${name} = ${value} is out of range`);
    }
  }
  if (rawVocab === undefined || rawVocab === 0 || Math.abs(rawVocab) > 1 << 22) {
    fail(path, `header vocab_size = ${rawVocab} is out of range`);
  }
  const config: LlamaConfig = {
    dim: dim!,
    hiddenDim: hiddenDim!,
    nLayers: nLayers!,
    nHeads: nHeads!,
    nKvHeads: nKvHeads!,
    vocabSize: Math.abs(rawVocab),
    maxSeqLen: seqLen!,
    normEps: LLAMA2C_NORM_EPS,
    ropeTheta: LLAMA2C_ROPE_THETA,
    sharedClassifier: rawVocab > 0,
  };
  if (config.dim % config.nHeads !== 0)
    fail(path, `dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (config.nHeads % config.nKvHeads !== 0) {
    fail(path, `n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  }
  const headSize = config.dim / config.nHeads;
  if (headSize % 2 !== 0) fail(path, `head size ${headSize} is odd; RoPE needs pairs`);
  const kvDim = config.nKvHeads * headSize;
  const perLayer: Record<Llama2cBlock, number> = {
    attnNorm: config.dim,
    wq: config.dim * config.dim,
    wk: config.dim * kvDim,
    wv: config.dim * kvDim,
    wo: config.dim * config.dim,
    ffnNorm: config.dim,
    w1: config.dim * config.hiddenDim,
    w2: config.hiddenDim * config.dim,
    w3: config.dim * config.hiddenDim,
  };
  let offset = LLAMA2C_HEADER_BYTES;
  const tokenEmbedding = { offset, elements: config.vocabSize * config.dim };
  offset += tokenEmbedding.elements * 4;
  const blocks = {} as Llama2cLayout['blocks'];
  for (const name of BLOCK_ORDER) {
    blocks[name] = { offset, perLayer: perLayer[name] };
    offset += perLayer[name] * config.nLayers * 4;
  }
  const finalNorm = { offset, elements: config.dim };
  offset += config.dim * 4;
  // run.c skips the legacy freq_cis_real and freq_cis_imag tables.
  offset += config.maxSeqLen * headSize * 4;
  const layout: Llama2cLayout = { config, blocks, tokenEmbedding, finalNorm, totalBytes: offset };
  if (!config.sharedClassifier) {
    layout.classifier = { offset, elements: config.vocabSize * config.dim };
    layout.totalBytes = offset + layout.classifier.elements * 4;
  }
  return layout;
}

/** Reads a checkpoint's header and checks the file is exactly as long as it implies. */
export async function readLlama2cLayout(path: string): Promise<Llama2cLayout> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new CheckpointInvalidError(
      `${path}: cannot read checkpoint (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  if (size < LLAMA2C_HEADER_BYTES) fail(path, `file is ${size} bytes, shorter than the header`);
  const handle = await open(path, 'r');
  try {
    const header = new Int32Array(7);
    await handle.read(new Uint8Array(header.buffer), 0, LLAMA2C_HEADER_BYTES, 0);
    const layout = llama2cLayout(header, path);
    if (size < layout.totalBytes) {
      fail(path, `truncated: the header implies ${layout.totalBytes} bytes, the file has ${size}`);
    }
    if (size > layout.totalBytes) {
      fail(
        path,
        `inconsistent: the header implies ${layout.totalBytes} bytes but the file has ${size} ` +
          '(a different format version, or a wrong vocab-size sign?)',
      );
    }
    return layout;
  } finally {
    await handle.close();
  }
}
