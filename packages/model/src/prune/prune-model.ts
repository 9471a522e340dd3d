/**
 * `swarmbee optimize prune`: a new model dir without some decoder layers. The layers
 * that stay keep their weights (whatever their precision) and are renumbered from 0;
 * the embedding, final norm and head are unchanged.
 */
import { PruneInvalidError } from '@swarmbee/core';
import { derivedDirOptions } from '../derived-model.js';
import type { LlamaModelDir, ModelDir } from '../model-dir.js';
import { requireLlamaDir, writeModelDir } from '../model-dir.js';
import type { ProgressFn } from '../progress.js';
import { readStoredWeight } from '../quant/stored-weights.js';

export interface PruneModelOptions {
  /** Layers to remove (indices of this model). At least one must stay. */
  drop: readonly number[];
  /** Output model dir (must not exist or be empty). */
  out: string;
  /** Model name in the manifest. Default: the source's name with `-pruned<N>`. */
  name?: string;
  progress?: ProgressFn;
}

/** The layers of an `nLayers` model that stay when `drop` go, in order; checks `drop`. */
export function keptLayers(nLayers: number, drop: readonly number[]): number[] {
  const dropped = new Set(drop);
  for (const layer of dropped) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
      throw new PruneInvalidError(
        `layer ${layer} does not exist: the model has layers 0..${nLayers - 1}`,
      );
    }
  }
  if (dropped.size >= nLayers) {
    throw new PruneInvalidError(
      `cannot drop ${dropped.size} of ${nLayers} layers: at least one layer must stay`,
    );
  }
  return Array.from({ length: nLayers }, (_, l) => l).filter((l) => !dropped.has(l));
}

/** A canonical tensor name of the pruned model, renamed to the layer it comes from. */
export function sourceTensorName(name: string, kept: readonly number[]): string {
  const match = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (!match) return name;
  return `layers.${kept[Number(match[1])]!}.${match[2]}`;
}

export async function pruneModel(
  model: ModelDir,
  options: PruneModelOptions,
): Promise<LlamaModelDir> {
  const dir = requireLlamaDir(model, 'prune');
  const { config } = dir.manifest;
  const kept = keptLayers(config.nLayers, options.drop);
  const dropped = [...new Set(options.drop)].sort((a, b) => a - b);
  return writeModelDir(options.out, {
    name: options.name ?? `${dir.manifest.name}-pruned${dropped.length}`,
    config: { ...config, nLayers: kept.length },
    ...(await derivedDirOptions(dir, { kind: 'prune', dropped })),
    progress: options.progress,
    tensors: (spec) => readStoredWeight(dir, sourceTensorName(spec.name, kept)),
  });
}
