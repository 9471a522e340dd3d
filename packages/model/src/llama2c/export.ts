/**
 * Writes a model dir back out as a llama2.c v0 checkpoint (and tokenizer), so
 * other runtimes (run.c, llama.cpp's converter) can run the very same weights.
 */
import { open, writeFile } from 'node:fs/promises';
import {
  headDim,
  InvalidArgumentError,
  type LlamaConfig,
  layerWindow,
  ModelUnsupportedError,
  QuantizationUnsupportedError,
} from '@swarmbee/core';
import {
  CLASSIFIER,
  FINAL_NORM,
  layerTensor,
  rotateHalfToInterleaved,
  TOKEN_EMBEDDING,
} from '../llama-tensors.js';
import { type ModelDir, readTensor, requireLlamaDir } from '../model-dir.js';
import { ropeTables } from '../onnx/rope.js';
import { Llama2cTokenizer, serializeLlama2cVocab } from '../tokenizer/llama2c-tokenizer.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA } from './checkpoint.js';

export async function exportLlama2c(
  model: ModelDir,
  checkpointOut: string,
  tokenizerOut?: string,
): Promise<void> {
  const dir = requireLlamaDir(model, 'export llama2c');
  // Checked before the file is opened, so a refused export leaves nothing behind.
  if (dir.manifest.weights.tensors.some((tensor) => tensor.quantization)) {
    throw new QuantizationUnsupportedError(
      `${dir.manifest.name} has quantized weights; llama2.c checkpoints are fp32: export the model it was quantized from`,
    );
  }
  const { config } = dir.manifest;
  const beyond = beyondLlama2c(config);
  if (beyond.length > 0) {
    throw new ModelUnsupportedError(
      `${dir.manifest.name} cannot be a llama2.c checkpoint: run.c has no ${beyond.join(', ')}`,
    );
  }
  const hd = headDim(config);
  const qRows = config.nHeads * hd;
  const kvRows = config.nKvHeads * hd;
  const handle = await open(checkpointOut, 'w');
  const put = async (data: Float32Array) => {
    await handle.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  };
  const perLayer = async (pick: (layer: number) => Promise<Float32Array>) => {
    for (let layer = 0; layer < config.nLayers; layer++) await put(await pick(layer));
  };
  try {
    const vocabField = config.sharedClassifier ? config.vocabSize : -config.vocabSize;
    await put(
      new Float32Array(
        new Int32Array([
          config.dim,
          config.hiddenDim,
          config.nLayers,
          config.nHeads,
          config.nKvHeads,
          vocabField,
          config.maxSeqLen,
        ]).buffer,
      ),
    );
    await put(await readTensor(dir, TOKEN_EMBEDDING));
    const qkv = (layer: number) => readTensor(dir, layerTensor.wqkv(layer));
    const w13 = (layer: number) => readTensor(dir, layerTensor.w13(layer));
    await perLayer((l) => readTensor(dir, layerTensor.attnNorm(l)));
    await perLayer(async (l) =>
      rotateHalfToInterleaved(
        (await qkv(l)).subarray(0, qRows * config.dim),
        config.nHeads,
        hd,
        config.dim,
      ),
    );
    await perLayer(async (l) =>
      rotateHalfToInterleaved(
        (await qkv(l)).subarray(qRows * config.dim, (qRows + kvRows) * config.dim),
        config.nKvHeads,
        hd,
        config.dim,
      ),
    );
    await perLayer(async (l) => (await qkv(l)).subarray((qRows + kvRows) * config.dim));
    await perLayer((l) => readTensor(dir, layerTensor.wo(l)));
    await perLayer((l) => readTensor(dir, layerTensor.ffnNorm(l)));
    await perLayer(async (l) => (await w13(l)).subarray(0, config.hiddenDim * config.dim));
    await perLayer((l) => readTensor(dir, layerTensor.w2(l)));
    await perLayer(async (l) => (await w13(l)).subarray(config.hiddenDim * config.dim));
    await put(await readTensor(dir, FINAL_NORM));
    // The legacy freq_cis tables run.c skips; written for readers that still expect them.
    const rope = ropeTables(config);
    await put(rope.cos);
    await put(rope.sin);
    if (!config.sharedClassifier) await put(await readTensor(dir, CLASSIFIER));
  } finally {
    await handle.close();
  }
  if (tokenizerOut) {
    const tokenizer = await loadTokenizer(dir);
    if (!(tokenizer instanceof Llama2cTokenizer)) {
      throw new InvalidArgumentError(`${dir.path} has no llama2.c tokenizer to export`);
    }
    await writeFile(tokenizerOut, serializeLlama2cVocab(tokenizer.vocab()));
  }
}

/**
 * What a config has that a llama2.c checkpoint cannot say: run.c computes plain
 * Llama with head size dim / heads, RoPE base 10000 and RMSNorm ε 1e-5, and nothing else.
 */
export function beyondLlama2c(config: LlamaConfig): string[] {
  const beyond: string[] = [];
  const note = (present: boolean, what: string) => {
    if (present) beyond.push(what);
  };
  note(config.ropeTheta !== LLAMA2C_ROPE_THETA, `RoPE base ${config.ropeTheta}`);
  note(config.normEps !== LLAMA2C_NORM_EPS, `RMSNorm epsilon ${config.normEps}`);
  note(config.qkvBias === true, 'q/k/v biases');
  note(config.headDim !== undefined, `head size ${config.headDim}`);
  note(config.ropeScaling !== undefined, `${config.ropeScaling?.type} RoPE scaling`);
  note(config.qkNorm === true, 'q/k norms');
  note(config.postNorms === true, 'post-norms');
  note((config.activation ?? 'silu') !== 'silu', `${config.activation} activation`);
  note(config.embeddingScale !== undefined, 'embedding scale');
  note(config.attentionScale !== undefined, 'attention scale');
  note(config.finalLogitSoftcap !== undefined, 'logit soft-cap');
  note(
    Array.from({ length: config.nLayers }, (_, l) => layerWindow(config, l)).some(
      (w) => w !== undefined,
    ),
    'sliding-window attention',
  );
  note(config.localRope !== undefined, 'second RoPE for local layers');
  return beyond;
}
