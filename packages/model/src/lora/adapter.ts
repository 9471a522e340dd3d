/**
 * A LoRA adapter in memory: its spec and the values of its tensors, tied to the base
 * model it was made for by that model's `modelHash`.
 */
import {
  AdapterBaseMismatchError,
  AdapterInvalidError,
  type LlamaConfig,
  type LlamaManifest,
} from '@swarmbee/core';
import { mulberry32 } from '../synth/random.js';
import {
  type LoraModule,
  type LoraSpec,
  loraModules,
  loraShapes,
  loraTensor,
} from './lora-spec.js';

export interface LoraAdapter {
  spec: LoraSpec;
  /** Every module's A [r, in] and B [out, r], by {@link loraTensor} name. */
  tensors: Map<string, Float32Array>;
  /** `modelHash` of the base model; absent for PEFT adapters made elsewhere. */
  baseModelHash?: string;
  /** The base model's name (PEFT's `base_model_name_or_path`), for people to read. */
  baseModelName?: string;
}

/**
 * A new adapter initialised as PEFT does by default: A uniform in ±1/√in (kaiming-uniform
 * with a = √5), B zero, so training starts from the base model exactly. Seeded.
 */
export function initLoraAdapter(
  spec: LoraSpec,
  manifest: Pick<LlamaManifest, 'config' | 'modelHash' | 'name'>,
  seed: number,
): LoraAdapter {
  const random = mulberry32(seed);
  const tensors = new Map<string, Float32Array>();
  for (const module of loraModules(spec, manifest.config)) {
    const { a, b } = loraShapes(module);
    const bound = 1 / Math.sqrt(module.inDim);
    const values = new Float32Array(a[0] * a[1]);
    for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * bound;
    tensors.set(loraTensor.a(module.layer, module.target), values);
    tensors.set(loraTensor.b(module.layer, module.target), new Float32Array(b[0] * b[1]));
  }
  return { spec, tensors, baseModelHash: manifest.modelHash, baseModelName: manifest.name };
}

/** The adapter's modules on this model, after checking every tensor is there with its shape. */
export function adapterModules(adapter: LoraAdapter, config: LlamaConfig): LoraModule[] {
  const modules = loraModules(adapter.spec, config);
  const expected = new Set<string>();
  for (const module of modules) {
    const shapes = loraShapes(module);
    for (const [name, dims] of [
      [loraTensor.a(module.layer, module.target), shapes.a],
      [loraTensor.b(module.layer, module.target), shapes.b],
    ] as const) {
      expected.add(name);
      const values = adapter.tensors.get(name);
      if (values?.length !== dims[0] * dims[1])
        throw new AdapterInvalidError(
          `adapter tensor ${name} should have ${dims[0] * dims[1]} values [${dims.join(', ')}] for this model, ` +
            `got ${values?.length ?? 'none'}`,
        );
    }
  }
  for (const name of adapter.tensors.keys())
    if (!expected.has(name))
      throw new AdapterInvalidError(`adapter tensor ${name} is not one of the spec's modules`);
  return modules;
}

/**
 * Checks that an adapter belongs to this base model: its recorded hash is the model's,
 * or the model was quantized from that model (the adapter then applies to the same
 * layers). A pruned model renumbers its layers, so adapters of its origin are refused.
 */
export function checkAdapterBase(adapter: LoraAdapter, manifest: LlamaManifest): void {
  const hash = adapter.baseModelHash;
  if (hash === undefined || hash === manifest.modelHash) return;
  const origin = manifest.derivedFrom;
  const pruned = origin?.steps.some((s) => s.kind === 'prune') ?? false;
  if (origin?.fromModelHash === hash && !pruned) return;
  throw new AdapterBaseMismatchError(
    `the adapter was made for model ${hash.slice(0, 12)}${adapter.baseModelName ? ` (${adapter.baseModelName})` : ''}; ` +
      `${manifest.name} is ${manifest.modelHash.slice(0, 12)}` +
      (origin?.fromModelHash === hash ? ', pruned from it: its layers are renumbered' : ''),
  );
}
