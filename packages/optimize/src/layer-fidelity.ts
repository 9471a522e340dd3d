/**
 * The per-layer fidelity table the deployment search combines (see the planner's
 * deployment/config.ts for the additive model): for every layer, the model with only
 * that layer quantized to int8, to int4, or dropped, measured against the fp32 model on
 * the corpus. Measured once per model, corpus and quantization setting, and cached as
 * JSON under `<cache>/fidelity/`.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WeightQuantization } from '@swarmbee/core';
import type { StageOptions } from '@swarmbee/engine';
import {
  cacheRoot,
  DEFAULT_QUANT_ACTIVATIONS,
  DEFAULT_QUANT_BLOCK_SIZE,
  type LlamaModelDir,
  type ModelVariant,
  type ProgressFn,
  QUANT_METHOD,
  sha256,
  VariantBuilder,
} from '@swarmbee/model';
import type { FidelityTable, LayerFidelity, QuantizedPrecision } from '@swarmbee/planner';
import type { FidelityFigures, ReferenceDistribution } from './fidelity.js';
import { variantPipeline, withPipeline } from './pipelines.js';

export const LAYER_FIDELITY_FORMAT = 'swarmbee.layer-fidelity';
export const LAYER_FIDELITY_VERSION = 1;

export interface LayerFidelityReport extends FidelityTable {
  format: typeof LAYER_FIDELITY_FORMAT;
  version: typeof LAYER_FIDELITY_VERSION;
  modelHash: string;
  corpusSha256: string;
  blockSize: number;
  activations: WeightQuantization['activations'];
  referencePerplexity: number;
  positions: number;
}

export interface LayerFidelityOptions {
  /** Precisions to measure. Default both int8 and int4. */
  precisions?: readonly QuantizedPrecision[];
  /** Measure dropping each layer too. Default true. */
  drops?: boolean;
  /** Default 32. */
  blockSize?: number;
  /** Default 'int8'. */
  activations?: WeightQuantization['activations'];
  /** Where to cache the table. Default `<cacheRoot>/fidelity`; `false` never reads or writes a cache. */
  cacheDir?: string | false;
  stage?: StageOptions;
  progress?: ProgressFn;
}

const entry = (f: FidelityFigures): LayerFidelity => ({ kl: f.kl, top1: f.top1 });

export async function measureLayerFidelity(
  dir: LlamaModelDir,
  reference: ReferenceDistribution,
  options: LayerFidelityOptions = {},
): Promise<LayerFidelityReport> {
  const precisions = options.precisions ?? (['int8', 'int4'] as const);
  const drops = options.drops !== false;
  const blockSize = options.blockSize ?? DEFAULT_QUANT_BLOCK_SIZE;
  const activations = options.activations ?? DEFAULT_QUANT_ACTIVATIONS;
  const n = dir.manifest.config.nLayers;
  const key = sha256(
    dir.manifest.modelHash,
    reference.corpus.sha256,
    JSON.stringify(reference.corpus.windows.map((w) => w.length)),
    String(blockSize),
    activations,
    QUANT_METHOD,
    [...precisions].sort().join(','),
    String(drops),
  );
  const cacheDir =
    options.cacheDir === false ? undefined : (options.cacheDir ?? join(cacheRoot(), 'fidelity'));
  const cacheFile = cacheDir ? join(cacheDir, `${key}.json`) : undefined;
  if (cacheFile) {
    const cached = await readFile(cacheFile, 'utf8').then(
      (text) => JSON.parse(text) as LayerFidelityReport,
      () => undefined,
    );
    if (cached?.format === LAYER_FIDELITY_FORMAT && cached.version === LAYER_FIDELITY_VERSION)
      return cached;
  }
  const builder = new VariantBuilder(dir, { blockSize, activations });
  const total = n * (precisions.length + (drops ? 1 : 0));
  let done = 0;
  const measure = async (variant: ModelVariant) => {
    const figures = await withPipeline(variantPipeline(builder, variant, options.stage), (p) =>
      reference.compare(p),
    );
    options.progress?.({ phase: 'per-layer fidelity', done: ++done, total, unit: 'steps' });
    return entry(figures);
  };
  const report: LayerFidelityReport = {
    format: LAYER_FIDELITY_FORMAT,
    version: LAYER_FIDELITY_VERSION,
    modelHash: dir.manifest.modelHash,
    corpusSha256: reference.corpus.sha256,
    blockSize,
    activations,
    referencePerplexity: reference.perplexity,
    positions: reference.corpus.predictions,
    quantized: {},
  };
  for (const precision of precisions) {
    const layers: LayerFidelity[] = [];
    for (let l = 0; l < n; l++) layers.push(await measure({ precision: { [l]: precision } }));
    report.quantized[precision] = layers;
  }
  if (drops) {
    const layers: LayerFidelity[] = [];
    for (let l = 0; l < n; l++) layers.push(await measure({ drop: [l] }));
    report.dropped = layers;
  }
  if (cacheDir && cacheFile) {
    await mkdir(cacheDir, { recursive: true });
    // Written aside and renamed, so a concurrent reader never sees half a table.
    const partial = `${cacheFile}.${process.pid}.partial`;
    await writeFile(partial, `${JSON.stringify(report, null, 2)}\n`);
    await rename(partial, cacheFile);
  }
  return report;
}
