/**
 * Merging a LoRA adapter into the base weights: W' = W + scale · B · A on each adapted
 * projection's rows of its fused tensor. Only fp32 weights merge: int8/int4 codes cannot
 * take an update that is mostly smaller than their quantization step without losing it,
 * so a quantized base is refused — merge into the fp32 model it was quantized from, then
 * quantize that (`swarmbee optimize quantize`).
 */
import { AdapterUnsupportedError, SWARMBEE_VERSION } from '@swarmbee/core';
import { sha256 } from '../hash.js';
import { findTensor, type LlamaModelDir, readTensor } from '../model-dir.js';
import { buildLlamaShardGraph } from '../onnx/llama-shard-graph.js';
import { checkRange, type LayerRange, type LlamaShardGraph, locateWeight } from '../shard.js';
import { adapterModules, checkAdapterBase, type LoraAdapter } from './adapter.js';
import { loraTensor } from './lora-spec.js';

/** The base tensors the adapter changes, merged, by canonical name. */
export async function mergeAdapter(
  dir: LlamaModelDir,
  adapter: LoraAdapter,
): Promise<Map<string, Float32Array>> {
  const { manifest } = dir;
  checkAdapterBase(adapter, manifest);
  const modules = adapterModules(adapter, manifest.config);
  const merged = new Map<string, Float32Array>();
  for (const module of modules) {
    const stored = findTensor(dir, module.tensor);
    if (stored.quantization)
      throw new AdapterUnsupportedError(
        `${module.tensor} of ${manifest.name} is int${stored.quantization.bits}: merging an adapter into ` +
          'quantized codes would lose most of its update; merge into the fp32 model it was quantized from, then quantize',
      );
    let weight = merged.get(module.tensor);
    if (!weight) {
      weight = await readTensor(dir, module.tensor);
      merged.set(module.tensor, weight);
    }
    const a = adapter.tensors.get(loraTensor.a(module.layer, module.target))!;
    const b = adapter.tensors.get(loraTensor.b(module.layer, module.target))!;
    const { rank, inDim, outDim, rowOffset, scale } = module;
    const row = new Float64Array(inDim);
    for (let o = 0; o < outDim; o++) {
      row.fill(0);
      for (let r = 0; r < rank; r++) {
        const coefficient = scale * b[o * rank + r]!;
        for (let i = 0; i < inDim; i++) row[i]! += coefficient * a[r * inDim + i]!;
      }
      const base = (rowOffset + o) * inDim;
      for (let i = 0; i < inDim; i++) weight[base + i] = weight[base + i]! + row[i]!;
    }
  }
  return merged;
}

/** A content hash of an adapter's values and spec: names an adapted model's shards. */
export function adapterHash(adapter: LoraAdapter): string {
  const parts: (string | Uint8Array)[] = [JSON.stringify(adapter.spec)];
  for (const name of [...adapter.tensors.keys()].sort()) {
    const values = adapter.tensors.get(name)!;
    parts.push(name, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return sha256(...parts);
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
    modelHash: sha256(dir.manifest.modelHash, adapterId),
    config,
    layerStart: range.start,
    layerEnd: range.end,
    onnx,
    externalDataDir: dir.path,
  };
}
