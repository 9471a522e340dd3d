/**
 * A data owner training with some layers pruned (a bandit arm): the `count` layers of least
 * Block Influence on the bundled calibration text (what `swarmbee optimize prune` measures)
 * are dropped with the existing pruning into a model dir cached beside the owner's shards,
 * and the round's adapter is renumbered onto the layers that stay. Adapters of dropped
 * layers are not trained: the owner's update leaves them out.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  keptLayers,
  type LlamaModelDir,
  type LoraAdapter,
  loadTokenizer,
  openModelDir,
  pruneModel,
  requireLlamaDir,
} from '@swarmbee/model';

/** Layer ranking per model path: measured once per process. */
const rankings = new Map<string, Promise<number[]>>();

async function layersByInfluence(model: LlamaModelDir): Promise<number[]> {
  let ranking = rankings.get(model.path);
  if (!ranking) {
    ranking = (async () => {
      const { blockInfluence, loadCorpus, measureLayerSimilarity } = await import(
        '@swarmbee/optimize'
      );
      const corpus = await loadCorpus(await loadTokenizer(model), model.manifest.config.maxSeqLen);
      const influence = blockInfluence(await measureLayerSimilarity(model, corpus));
      return influence
        .map((bi, layer) => ({ bi, layer }))
        .sort((a, b) => a.bi - b.bi || a.layer - b.layer)
        .map((x) => x.layer);
    })();
    rankings.set(model.path, ranking);
  }
  return ranking;
}

export interface PrunedModel {
  model: LlamaModelDir;
  /** Layers of the whole model that stay, in order (index i of the pruned model is kept[i]). */
  kept: number[];
}

/** The model without its `count` least influential layers, pruned once into `cacheDir`. */
export async function prunedForRound(
  model: LlamaModelDir,
  count: number,
  cacheDir: string,
): Promise<PrunedModel> {
  const drop = (await layersByInfluence(model)).slice(0, count).sort((a, b) => a - b);
  const kept = keptLayers(model.manifest.config.nLayers, drop);
  const out = join(cacheDir, `pruned-${model.manifest.modelHash.slice(0, 16)}-${drop.join('_')}`);
  const pruned = existsSync(join(out, 'manifest.json'))
    ? requireLlamaDir(await openModelDir(out), 'a pruned round')
    : await pruneModel(model, { drop, out });
  return { model: pruned, kept };
}

const LAYER_NAME = /^layers\.(\d+)\.(.+)$/;

/** The adapter on the pruned model's layers: dropped layers' modules left out, the rest renumbered. */
export function onPrunedLayers(adapter: LoraAdapter, kept: readonly number[]): LoraAdapter {
  const index = new Map(kept.map((layer, i) => [layer, i]));
  const tensors = new Map<string, Float32Array>();
  for (const [name, value] of adapter.tensors) {
    const match = LAYER_NAME.exec(name);
    const to = match ? index.get(Number(match[1])) : undefined;
    if (match && to !== undefined) tensors.set(`layers.${to}.${match[2]}`, value);
  }
  const layers = adapter.spec.layers.filter((l) => index.has(l)).map((l) => index.get(l)!);
  const { baseModelHash: _base, ...rest } = adapter;
  return { ...rest, spec: { ...adapter.spec, layers }, tensors };
}

/** The trained pruned-model adapter back on the whole model's layer numbers. */
export function onWholeLayers(
  adapter: LoraAdapter,
  kept: readonly number[],
  baseModelHash: string | undefined,
): LoraAdapter {
  const tensors = new Map<string, Float32Array>();
  for (const [name, value] of adapter.tensors) {
    const match = LAYER_NAME.exec(name)!;
    tensors.set(`layers.${kept[Number(match[1])]!}.${match[2]}`, value);
  }
  const layers = adapter.spec.layers.map((i) => kept[i]!);
  return {
    ...adapter,
    spec: { ...adapter.spec, layers },
    tensors,
    ...(baseModelHash ? { baseModelHash } : {}),
  };
}
