/**
 * One base tensor with an adapter merged in: W' = W + scale · B · A on each adapted
 * projection's rows of it (q, k and v share the fused qkv tensor, gate and up the fused
 * w13). Only fp32 weights merge: int8/int4 codes cannot take an update that is mostly
 * smaller than their quantization step without losing it, so a quantized base is refused —
 * merge into the fp32 model it was quantized from, then quantize that.
 */
import { AdapterUnsupportedError, type LlamaManifest, type WeightTensor } from '@swarmbee/core';
import { sha256 } from '../hash.js';
import { findTensor, type LlamaModelDir } from '../model-dir.js';
import { adapterModules, checkAdapterBase, type LoraAdapter } from './adapter.js';
import { type LoraModule, loraTensor } from './lora-spec.js';

/** The adapter's modules on this model (checked against it), by the base tensor each changes. */
export function modulesByTensor(
  adapter: LoraAdapter,
  manifest: LlamaManifest,
): Map<string, LoraModule[]> {
  checkAdapterBase(adapter, manifest);
  const byTensor = new Map<string, LoraModule[]>();
  for (const module of adapterModules(adapter, manifest.config)) {
    const modules = byTensor.get(module.tensor) ?? [];
    modules.push(module);
    byTensor.set(module.tensor, modules);
  }
  return byTensor;
}

/** @throws AdapterUnsupportedError when the base tensor an adapter changes is quantized. */
export function refuseQuantizedBase(manifest: LlamaManifest, stored: WeightTensor): void {
  if (stored.quantization)
    throw new AdapterUnsupportedError(
      `${stored.name} of ${manifest.name} is int${stored.quantization.bits}: merging an adapter into ` +
        'quantized codes would lose most of its update; merge into the fp32 model it was quantized from, then quantize',
    );
}

/** Adds each module's scale · B · A to its rows of `weight`, the [out, in] base tensor they change. */
export function mergeModules(
  weight: Float32Array,
  modules: readonly LoraModule[],
  adapter: LoraAdapter,
): void {
  for (const module of modules) {
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

/** The model hash of `base` with the adapter `adapterId` merged: what its shards are filed under. */
export function adaptedModelHash(baseModelHash: string, adapterId: string): string {
  return sha256(baseModelHash, adapterId);
}

/**
 * Checks, before any shard is built, that `adapter` can be merged into this model's
 * weights: made for it, and every tensor it changes fp32.
 * @throws AdapterBaseMismatchError, AdapterInvalidError or AdapterUnsupportedError
 */
export function checkMergeable(dir: LlamaModelDir, adapter: LoraAdapter): void {
  for (const tensor of modulesByTensor(adapter, dir.manifest).keys())
    refuseQuantizedBase(dir.manifest, findTensor(dir, tensor));
}
