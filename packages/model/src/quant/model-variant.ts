/**
 * Model variants built in memory: an fp32 model dir with some layers dropped and others
 * quantized, as shard graphs ready for an engine, without writing a model dir. The fp32
 * weights stay where they are (external data in the model's `weights.bin`); quantized
 * ones are made once, cached, and embedded in the graph. Fidelity sweeps (one variant per
 * layer and precision) and pruning candidates run through these; `quantizeModel` and
 * `pruneModel` write the same weights to disk.
 */
import {
  type LayerPrecision,
  QuantizationUnsupportedError,
  SWARMBEE_VERSION,
  type WeightQuantization,
} from '@swarmbee/core';
import { sha256 } from '../hash.js';
import { findTensor, type LlamaModelDir, readTensor } from '../model-dir.js';
import { buildLlamaShardGraph, type LocatedWeight } from '../onnx/llama-shard-graph.js';
import { keptLayers, sourceTensorName } from '../prune/prune-model.js';
import { checkRange, type LayerRange, type LlamaShardGraph, locateWeight } from '../shard.js';
import {
  DEFAULT_QUANT_BLOCK_SIZE,
  type QuantBits,
  type QuantizedMatrix,
  quantizeBlockwise,
  quantizedLayout,
} from './block-quant.js';
import { DEFAULT_QUANT_ACTIVATIONS, layerLinearWeights } from './quantize-model.js';

/** What differs from the base model. */
export interface ModelVariant {
  /** Base-model layers to remove. Default none. */
  drop?: readonly number[];
  /** Precision of base-model layers' linear weights; absent layers stay as stored. */
  precision?: Readonly<Record<number, LayerPrecision>>;
}

export interface VariantBuilderOptions {
  /** Default {@link DEFAULT_QUANT_BLOCK_SIZE} (32). */
  blockSize?: number;
  /** Default {@link DEFAULT_QUANT_ACTIVATIONS} ('int8'). */
  activations?: WeightQuantization['activations'];
}

const BITS: Record<Exclude<LayerPrecision, 'fp32'>, QuantBits> = { int8: 8, int4: 4 };

/** A short, stable description of a variant, e.g. `drop 3 | int4 0,1 | int8 4`. */
export function describeVariant(variant: ModelVariant): string {
  const parts: string[] = [];
  const drop = [...(variant.drop ?? [])].sort((a, b) => a - b);
  if (drop.length > 0) parts.push(`drop ${drop.join(',')}`);
  for (const p of ['int8', 'int4'] as const) {
    const layers = Object.entries(variant.precision ?? {})
      .filter(([, v]) => v === p)
      .map(([l]) => Number(l))
      .sort((a, b) => a - b);
    if (layers.length > 0) parts.push(`${p} ${layers.join(',')}`);
  }
  return parts.length > 0 ? parts.join(' | ') : 'as stored';
}

export class VariantBuilder {
  readonly blockSize: number;
  readonly activations: WeightQuantization['activations'];
  readonly #quantized = new Map<string, Promise<QuantizedMatrix>>();

  constructor(
    readonly dir: LlamaModelDir,
    options: VariantBuilderOptions = {},
  ) {
    this.blockSize = options.blockSize ?? DEFAULT_QUANT_BLOCK_SIZE;
    this.activations = options.activations ?? DEFAULT_QUANT_ACTIVATIONS;
  }

  /** Layers the variant has, by their base-model index. */
  keptLayers(variant: ModelVariant): number[] {
    return keptLayers(this.dir.manifest.config.nLayers, variant.drop ?? []);
  }

  /**
   * The shard of layers `range` of the variant (indices after dropping). `headless` ends
   * with the hidden state even on the last layer (for calibration, never for serving).
   */
  async shard(
    variant: ModelVariant,
    range?: LayerRange,
    options: { headless?: boolean } = {},
  ): Promise<LlamaShardGraph> {
    const base = this.dir.manifest;
    const kept = this.keptLayers(variant);
    const config = { ...base.config, nLayers: kept.length };
    const { start, end } = range ?? { start: 0, end: kept.length };
    checkRange(config, { start, end });
    const inline = new Map<string, QuantizedMatrix>();
    for (let layer = start; layer < end; layer++) {
      const precision = variant.precision?.[kept[layer]!] ?? 'fp32';
      if (precision === 'fp32') continue;
      for (const name of layerLinearWeights(kept[layer]!)) {
        inline.set(name, await this.#quantize(name, BITS[precision]));
      }
    }
    const onnx = buildLlamaShardGraph({
      config,
      layerStart: start,
      layerEnd: end,
      producer: `swarmbee ${SWARMBEE_VERSION}`,
      headless: options.headless === true,
      locate: (name) => this.#locate(sourceTensorName(name, kept), inline),
    });
    return {
      kind: 'llama',
      modelHash: sha256(base.modelHash, describeVariant(variant), String(this.blockSize)),
      config,
      layerStart: start,
      layerEnd: end,
      onnx,
      externalDataDir: this.dir.path,
    };
  }

  #quantize(name: string, bits: QuantBits): Promise<QuantizedMatrix> {
    const key = `${name}/${bits}`;
    let matrix = this.#quantized.get(key);
    if (!matrix) {
      const tensor = findTensor(this.dir, name);
      if (tensor.quantization) {
        throw new QuantizationUnsupportedError(
          `${name} is already int${tensor.quantization.bits}; variants quantize fp32 layers only`,
        );
      }
      const [rows, cols] = tensor.shape as [number, number];
      matrix = readTensor(this.dir, name).then((values) =>
        quantizeBlockwise(values, rows, cols, bits, this.blockSize),
      );
      this.#quantized.set(key, matrix);
    }
    return matrix;
  }

  #locate(name: string, inline: ReadonlyMap<string, QuantizedMatrix>): LocatedWeight {
    const matrix = inline.get(name);
    if (matrix) {
      const layout = quantizedLayout(matrix.rows, matrix.cols, matrix.bits, matrix.blockSize);
      return {
        dims: layout.codesShape,
        data: matrix.codes,
        quantization: {
          bits: matrix.bits,
          blockSize: matrix.blockSize,
          shape: [matrix.rows, matrix.cols],
          activations: this.activations,
          scales: { dims: layout.scalesShape, data: matrix.scales },
          zeroPoints: { dims: layout.zeroPointsShape, data: matrix.zeroPoints },
        },
      };
    }
    const file = this.dir.manifest.weights.file;
    const where = (stored: string) => {
      const t = findTensor(this.dir, stored);
      return { location: file, offset: t.offset, length: t.bytes };
    };
    return locateWeight(this.dir, name, where);
  }
}
