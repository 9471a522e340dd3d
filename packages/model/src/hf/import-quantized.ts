/**
 * `model import hf --bits 4|8`: a checkpoint imported straight to a quantized model dir,
 * for models whose fp32 dir the disk cannot hold beside the checkpoint (Llama 3.1 8B: 32
 * GB of fp32 next to 16 GB of bf16). Linear weights are quantized as they stream in,
 * exactly as `optimize quantize` would quantize the fp32 import (the same values, the
 * same kernel), so the weights are byte for byte those of import-then-quantize. The
 * fp32 model dir is never written, but its hash is: every tensor is hashed as fp32 in
 * the model dir's layout on the way, and the manifest records the derivation from that
 * model exactly as `optimize quantize` would (adapters trained on it still apply).
 */
import { createHash } from 'node:crypto';
import {
  InvalidArgumentError,
  type LlamaConfig,
  type ModelDerivation,
  type ModelDerivationStep,
  type TokenizerRef,
  WEIGHT_ALIGNMENT_BYTES,
} from '@swarmbee/core';
import { sha256 } from '../hash.js';
import {
  CLASSIFIER,
  llamaTensorSpecs,
  type TensorSpec,
  TOKEN_EMBEDDING,
} from '../llama-tensors.js';
import type { TensorValues } from '../model-dir.js';
import {
  checkQuantization,
  DEFAULT_QUANT_BLOCK_SIZE,
  QUANT_METHOD,
  type QuantBits,
  quantizedLayout,
} from '../quant/block-quant.js';
import { DEFAULT_QUANT_ACTIVATIONS, layerLinearWeights } from '../quant/quantize-model.js';
import { quantizeStreamed } from '../quant/stream-quant.js';

export interface ImportQuantization {
  bits: QuantBits;
  /**
   * Quantize the LM head too, as `optimize quantize --head` would: a head tied to the
   * embedding becomes its own quantized tensor (the embedding stays fp32). Default false.
   */
  head?: boolean;
}

/** Hashes tensors as `writeModelDir` lays them out in an fp32 `weights.bin`, without writing it. */
class Fp32LayoutHash {
  readonly #hash = createHash('sha256');
  #offset = 0;

  /** Pads to the next tensor's alignment, then hashes its values as they pass. */
  async *tensor(values: AsyncIterable<Float32Array>): AsyncGenerator<Float32Array> {
    const padding =
      (WEIGHT_ALIGNMENT_BYTES - (this.#offset % WEIGHT_ALIGNMENT_BYTES)) % WEIGHT_ALIGNMENT_BYTES;
    this.#hash.update(new Uint8Array(padding));
    this.#offset += padding;
    for await (const chunk of values) {
      this.#hash.update(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#offset += chunk.byteLength;
      yield chunk;
    }
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** What an importer needs to write a quantized model dir: the tensor source and the derivation record. */
export function quantizingImport(
  config: LlamaConfig,
  name: string,
  quantization: ImportQuantization,
  values: (spec: TensorSpec) => AsyncIterable<Float32Array>,
): {
  /** The config the quantized model dir records (a quantized tied head is untied). */
  config: LlamaConfig;
  tensors: (spec: TensorSpec) => Promise<TensorValues>;
  derivedFrom: (tokenizer: TokenizerRef | undefined) => ModelDerivation;
  weightsBytes: number;
} {
  const { bits } = quantization;
  const head = quantization.head ?? false;
  if (typeof head !== 'boolean')
    throw new InvalidArgumentError(`quantize.head is ${JSON.stringify(head)}: true or false`);
  const blockSize = DEFAULT_QUANT_BLOCK_SIZE;
  checkQuantization(bits, blockSize);
  const layers = Array.from({ length: config.nLayers }, (_, l) => l);
  const targets = new Set(layers.flatMap(layerLinearWeights));
  if (head) targets.add(CLASSIFIER);
  // A tied head is not a tensor of the fp32 model: it is the embedding read again, unhashed.
  const tiedHead = head && config.sharedClassifier;
  const written: LlamaConfig = tiedHead ? { ...config, sharedClassifier: false } : config;
  const activations = DEFAULT_QUANT_ACTIVATIONS;
  const step: ModelDerivationStep = {
    kind: 'quantize',
    bits,
    blockSize,
    activations,
    method: QUANT_METHOD,
    layers,
    head,
  };
  const fp32 = new Fp32LayoutHash();
  const weightsBytes = llamaTensorSpecs(written).reduce((sum, spec) => {
    const [rows, cols] = spec.shape as [number, number];
    return (
      sum +
      (targets.has(spec.name)
        ? quantizedLayout(rows, cols, bits, blockSize).bytes + 3 * WEIGHT_ALIGNMENT_BYTES
        : 4 * spec.shape.reduce((a, b) => a * b, 1) + WEIGHT_ALIGNMENT_BYTES)
    );
  }, 0);
  return {
    config: written,
    weightsBytes,
    tensors: async (spec) => {
      const stream =
        tiedHead && spec.name === CLASSIFIER
          ? values({ ...spec, name: TOKEN_EMBEDDING })
          : fp32.tensor(values(spec));
      if (!targets.has(spec.name)) return stream;
      const [rows, cols] = spec.shape as [number, number];
      const matrix = await quantizeStreamed(stream, rows, cols, bits, blockSize);
      return { kind: 'quantized', matrix, activations };
    },
    derivedFrom: (tokenizer) => ({
      // The fp32 import's modelHash, as writeModelDir would have computed it.
      fromModelHash: sha256(JSON.stringify(config), fp32.digest(), tokenizer?.sha256 ?? ''),
      fromName: name,
      steps: [step],
    }),
  };
}
