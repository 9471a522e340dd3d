/**
 * A stage's training graphs built from a model dir, reading the frozen weights in
 * place (external data in the model's `weights.bin`, as inference shards do).
 */
import { open } from 'node:fs/promises';
import { type LlamaConfig, SWARMBEE_VERSION } from '@swarmbee/core';
import type { LoraModule } from '../lora/lora-spec.js';
import { findTensor, type LlamaModelDir } from '../model-dir.js';
import type { LocatedWeight } from '../onnx/llama-shard-graph.js';
import {
  checkRange,
  type LayerRange,
  locateWeight,
  SHARD_WEIGHTS_FILE,
  shardTensorNames,
  shardWeightLayout,
} from '../shard.js';
import { contiguousZeroPoints } from './frozen-weights.js';
import {
  type ActivationPolicy,
  buildTrainingStageGraphs,
  type TrainingStageGraphs,
} from './stage-graphs.js';
import type { FloatType } from './train-graph.js';
import { checkTrainable } from './trainable.js';

/** Everything a training stage engine needs: its graphs and where their weights live. */
export interface TrainingShard extends TrainingStageGraphs {
  modelHash: string;
  config: LlamaConfig;
  layerStart: number;
  layerEnd: number;
  float: FloatType;
  activations: ActivationPolicy;
  /** Directory onnxruntime resolves the graphs' external-data file names against. */
  externalDataDir: string;
}

export interface TrainingShardOptions {
  /** Default float32; float64 builds the gradient-check variant. */
  float?: FloatType;
  /** Default `recompute` (see stage-graphs.ts). */
  activations?: ActivationPolicy;
  /**
   * Where the graphs read the frozen weights: `model` (default), the model dir's own
   * `weights.bin`; `shard`, the `weights.bin` of the inference shard `writeShard` writes
   * for the same range — so a worker trains on the shard it already holds, and
   * `externalDataDir` is left empty for it to fill in with that shard's directory.
   */
  weights?: 'model' | 'shard';
}

export const DEFAULT_ACTIVATION_POLICY: ActivationPolicy = 'recompute';

export async function buildTrainingShard(
  dir: LlamaModelDir,
  range: LayerRange,
  modules: readonly LoraModule[],
  options: TrainingShardOptions = {},
): Promise<TrainingShard> {
  const { config } = dir.manifest;
  checkTrainable(config, dir.manifest.name);
  checkRange(config, range);
  const float = options.float ?? 'float32';
  const activations = options.activations ?? DEFAULT_ACTIVATION_POLICY;
  const inShard = options.weights === 'shard';
  const layout = inShard ? shardWeightLayout(dir, config, range) : undefined;
  const file = dir.manifest.weights.file;
  const where = (stored: string) => {
    if (layout) {
      const placed = layout.placed.get(stored);
      if (!placed)
        throw new Error(`internal: shard [${range.start}, ${range.end}) has no ${stored}`);
      return { location: SHARD_WEIGHTS_FILE, offset: placed.offset, length: placed.bytes };
    }
    const tensor = findTensor(dir, stored);
    return { location: file, offset: tensor.offset, length: tensor.bytes };
  };
  const located = new Map<string, LocatedWeight>();
  for (const name of shardTensorNames(config, range)) {
    const weight = locateWeight(dir, name, where);
    located.set(name, await withContiguousZeroPoints(dir, name, weight));
  }
  const graphs = buildTrainingStageGraphs({
    config,
    layerStart: range.start,
    layerEnd: range.end,
    modules,
    float,
    activations,
    producer: `swarmbee ${SWARMBEE_VERSION}`,
    locate: (name) => {
      const weight = located.get(name);
      if (!weight) throw new Error(`internal: stage [${range.start}, ${range.end}) has no ${name}`);
      return weight;
    },
  });
  return {
    ...graphs,
    modelHash: dir.manifest.modelHash,
    config,
    layerStart: range.start,
    layerEnd: range.end,
    float,
    activations,
    externalDataDir: inShard ? '' : dir.path,
  };
}

/** An int4 weight with an odd number of blocks per row gets its zero points repacked inline. */
async function withContiguousZeroPoints(
  dir: LlamaModelDir,
  name: string,
  weight: LocatedWeight,
): Promise<LocatedWeight> {
  const q = weight.quantization;
  if (q?.bits !== 4) return weight;
  const blocks = Math.ceil(q.shape[1] / q.blockSize);
  if (blocks % 2 === 0 || !q.zeroPoints.where) return weight;
  // Read from the model dir, wherever the graph will find the rest.
  const stored = findTensor(dir, findTensor(dir, name).quantization!.zeroPoints);
  const { offset, bytes: length } = stored;
  const bytes = new Uint8Array(length);
  const handle = await open(dir.weightsPath, 'r');
  try {
    await handle.read(bytes, 0, length, offset);
  } finally {
    await handle.close();
  }
  const data = contiguousZeroPoints(bytes, q.shape[0], blocks);
  return { ...weight, quantization: { ...q, zeroPoints: { dims: q.zeroPoints.dims, data } } };
}
