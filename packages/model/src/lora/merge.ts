/**
 * An adapter merged into the base weights, in memory (`generate --adapter`; a coordinator
 * merges tensor by tensor as it writes a shard instead: see writeShard's `adapter`).
 * See merge-tensor.ts for the merge itself.
 */
import { SWARMBEE_VERSION } from '@swarmbee/core';
import { findTensor, type LlamaModelDir, readTensor } from '../model-dir.js';
import { buildLlamaShardGraph } from '../onnx/llama-shard-graph.js';
import { checkRange, type LayerRange, type LlamaShardGraph, locateWeight } from '../shard.js';
import type { LoraAdapter } from './adapter.js';
import {
  adaptedModelHash,
  mergeModules,
  modulesByTensor,
  refuseQuantizedBase,
} from './merge-tensor.js';

/** The base tensors the adapter changes, merged, by canonical name. */
export async function mergeAdapter(
  dir: LlamaModelDir,
  adapter: LoraAdapter,
): Promise<Map<string, Float32Array>> {
  const merged = new Map<string, Float32Array>();
  for (const [tensor, modules] of modulesByTensor(adapter, dir.manifest)) {
    refuseQuantizedBase(dir.manifest, findTensor(dir, tensor));
    const weight = await readTensor(dir, tensor);
    mergeModules(weight, modules, adapter);
    merged.set(tensor, weight);
  }
  return merged;
}

/**
 * The inference shard of `range` with merged weights in place of the base ones: the
 * merged tensors are embedded in the graph, the rest stay external data in the model's
 * `weights.bin`. The graph is the one `buildShard` makes; only those weights differ.
 */
export function buildMergedShard(
  dir: LlamaModelDir,
  range: LayerRange,
  merged: ReadonlyMap<string, Float32Array>,
  adapterId: string,
): LlamaShardGraph {
  const { config } = dir.manifest;
  checkRange(config, range);
  const file = dir.manifest.weights.file;
  const onnx = buildLlamaShardGraph({
    config,
    layerStart: range.start,
    layerEnd: range.end,
    producer: `swarmbee ${SWARMBEE_VERSION}`,
    locate: (name) => {
      const values = merged.get(name);
      if (values) return { dims: findTensor(dir, name).shape, data: values };
      return locateWeight(dir, name, (stored) => {
        const tensor = findTensor(dir, stored);
        return { location: file, offset: tensor.offset, length: tensor.bytes };
      });
    },
  });
  return {
    kind: 'llama',
    modelHash: adaptedModelHash(dir.manifest.modelHash, adapterId),
    config,
    layerStart: range.start,
    layerEnd: range.end,
    onnx,
    externalDataDir: dir.path,
  };
}
