/**
 * `swarmbee optimize quantize`: a new model dir whose linear weights (q/k/v, o, gate/up,
 * down; optionally the LM head) are block-quantized to int8 or int4. Embeddings and
 * norms stay fp32: they are a small share of the bytes and the embedding is a lookup,
 * not a matmul. Layers not asked for keep their precision, so quantizing some layers,
 * then others at another width, gives a mixed-precision model.
 */
import {
  type LayerPrecision,
  QuantizationUnsupportedError,
  WEIGHT_ALIGNMENT_BYTES,
  type WeightQuantization,
} from '@swarmbee/core';
import { derivedDirOptions } from '../derived-model.js';
import { ensureDiskSpace } from '../disk-space.js';
import { CLASSIFIER, layerTensor, llamaTensorSpecs, TOKEN_EMBEDDING } from '../llama-tensors.js';
import {
  findTensor,
  type LlamaModelDir,
  type ModelDir,
  requireLlamaDir,
  type TensorValues,
  writeModelDir,
} from '../model-dir.js';
import type { ProgressFn } from '../progress.js';
import { storedTensorNames } from '../shard.js';
import {
  checkQuantization,
  DEFAULT_QUANT_BLOCK_SIZE,
  QUANT_METHOD,
  type QuantBits,
  quantizedLayout,
} from './block-quant.js';
import { isQuantizedWeight, readStoredWeight, streamTensor } from './stored-weights.js';
import { quantizeStreamed } from './stream-quant.js';

/** Default treatment of activations by quantized matmuls (see WeightQuantization). */
export const DEFAULT_QUANT_ACTIVATIONS: WeightQuantization['activations'] = 'int8';

export interface QuantizeModelOptions {
  /** 8 or 4. */
  bits: number;
  /** Weights per block along the input dimension. Default {@link DEFAULT_QUANT_BLOCK_SIZE} (32). */
  blockSize?: number;
  /** Layers to quantize (indices of this model). Default: every layer. */
  layers?: readonly number[];
  /** Quantize the LM head too; a head tied to the embedding becomes its own tensor. Default false. */
  head?: boolean;
  /** How quantized matmuls treat activations. Default {@link DEFAULT_QUANT_ACTIVATIONS} ('int8'). */
  activations?: WeightQuantization['activations'];
  /** Output model dir (must not exist or be empty). */
  out: string;
  /** Model name in the manifest. Default: the source's name with `-int8` / `-int4`. */
  name?: string;
  progress?: ProgressFn;
}

/** The linear weights of a layer: what quantization replaces. */
export function layerLinearWeights(layer: number): string[] {
  return [
    layerTensor.wqkv(layer),
    layerTensor.wo(layer),
    layerTensor.w13(layer),
    layerTensor.w2(layer),
  ];
}

/** The precision each layer's linear weights are stored in. */
export function layerPrecisions(dir: ModelDir): LayerPrecision[] {
  return dir.manifest.layers.map((layer) => layer.precision ?? 'fp32');
}

export async function quantizeModel(
  model: ModelDir,
  options: QuantizeModelOptions,
): Promise<LlamaModelDir> {
  const dir = requireQuantizable(model);
  const { config } = dir.manifest;
  const blockSize = options.blockSize ?? DEFAULT_QUANT_BLOCK_SIZE;
  const { bits } = options;
  checkQuantization(bits, blockSize);
  const activations = options.activations ?? DEFAULT_QUANT_ACTIVATIONS;
  if (activations !== 'float32' && activations !== 'int8') {
    throw new QuantizationUnsupportedError(
      `activations must be float32 or int8, got ${String(activations)}`,
    );
  }
  const chosen = options.layers
    ? [...new Set(options.layers)].sort((a, b) => a - b)
    : Array.from({ length: config.nLayers }, (_, l) => l);
  for (const layer of chosen) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= config.nLayers) {
      throw new QuantizationUnsupportedError(
        `layer ${layer} does not exist: the model has layers 0..${config.nLayers - 1}`,
      );
    }
    const stored = layerLinearWeights(layer).find((name) => isQuantizedWeight(dir, name));
    if (stored) {
      throw new QuantizationUnsupportedError(
        `layer ${layer} is already ${dir.manifest.layers[layer]?.precision ?? 'quantized'}; ` +
          'quantize the fp32 model instead (requantizing compounds the error), or leave this layer out with --layers',
      );
    }
  }
  const partial = chosen.length < config.nLayers;
  const head = options.head === true;
  const headSource = config.sharedClassifier ? TOKEN_EMBEDDING : CLASSIFIER;
  if (head && isQuantizedWeight(dir, headSource)) {
    throw new QuantizationUnsupportedError('the LM head is already quantized');
  }
  const targets = new Set(chosen.flatMap(layerLinearWeights));
  if (head) targets.add(CLASSIFIER);
  const step = {
    kind: 'quantize' as const,
    bits,
    blockSize,
    activations,
    method: QUANT_METHOD,
    layers: chosen,
    head,
  };
  await ensureDiskSpace(
    options.out,
    quantizedDirBytes(dir, targets, bits, blockSize),
    `the int${bits} model`,
  );
  return writeModelDir(options.out, {
    name:
      options.name ??
      `${dir.manifest.name}-int${bits}${partial ? `-layers${formatLayers(chosen)}` : ''}`,
    // A quantized head is its own tensor, even where the fp32 head was the embedding.
    config: head ? { ...config, sharedClassifier: false } : config,
    ...(await derivedDirOptions(dir, step)),
    progress: options.progress,
    tensors: async (spec): Promise<TensorValues> => {
      if (!targets.has(spec.name)) return readStoredWeight(dir, spec.name);
      const source = spec.name === CLASSIFIER ? headSource : spec.name;
      const [rows, cols] = spec.shape as [number, number];
      const matrix = await quantizeStreamed(streamTensor(dir, source), rows, cols, bits, blockSize);
      return { kind: 'quantized', matrix, activations };
    },
  });
}

/** Bytes of `weights.bin` once `targets` are quantized (each tensor's alignment padding counted in full). */
function quantizedDirBytes(
  dir: LlamaModelDir,
  targets: ReadonlySet<string>,
  bits: QuantBits,
  blockSize: number,
): number {
  return llamaTensorSpecs(dir.manifest.config).reduce((sum, spec) => {
    if (targets.has(spec.name)) {
      const [rows, cols] = spec.shape as [number, number];
      return sum + quantizedLayout(rows, cols, bits, blockSize).bytes + 3 * WEIGHT_ALIGNMENT_BYTES;
    }
    return (
      sum +
      storedTensorNames(dir, spec.name).reduce(
        (bytes, name) => bytes + findTensor(dir, name).bytes + WEIGHT_ALIGNMENT_BYTES,
        0,
      )
    );
  }, 0);
}

function requireQuantizable(model: ModelDir): LlamaModelDir {
  if (model.manifest.architecture !== 'llama') {
    throw new QuantizationUnsupportedError(
      `${model.manifest.name} is an imported ${model.manifest.architecture}; SwarmBee quantizes the Llama-family models it builds graphs for`,
    );
  }
  return requireLlamaDir(model, 'quantize');
}

/** Layer indices as ranges, e.g. [0, 1, 2, 5] → "0-2,5". */
export function formatLayers(layers: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < layers.length) {
    let j = i;
    while (j + 1 < layers.length && layers[j + 1] === layers[j]! + 1) j++;
    parts.push(i === j ? `${layers[i]}` : `${layers[i]}-${layers[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
