/**
 * LoRA adapters served side by side, unmerged: a shard keeps the base weights as they are (at
 * any precision) and, beside each base tensor some adapter changes, the adapters' A and B
 * stacked along a first axis, one slot per adapter after an all-zero slot 0 for the base.
 * Each row of a micro-batch names its adapter (`adapter_ids`, 0 for the base); the graph
 * gathers that row's slot and adds `x · Aᵀ · (scale · B)ᵀ` to the base product (see
 * `DecoderBlocks.linear`). A fused tensor's targets (q, k, v in wqkv; gate, up in w13) sit
 * side by side in the stacked rank, each at the widest rank any adapter gives it: B is then
 * block-diagonal, with zeros where an adapter leaves a target out.
 */
import { InvalidArgumentError, type LlamaConfig, type LlamaManifest } from '@swarmbee/core';
import { sha256 } from '../hash.js';
import type { LoraAdapter } from './adapter.js';
import { adapterHash, modulesByTensor } from './merge-tensor.js';

export { loraStackTensor } from './stack-names.js';

import {
  LORA_TARGETS,
  type LoraModule,
  type LoraTarget,
  loraTensor,
  targetPlace,
} from './lora-spec.js';

/** A name an adapter is served under: `<model>:<name>` in the API's `model` field. */
export const ADAPTER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Most adapters one deployment serves side by side (each costs every stage a stacked slot). */
export const MAX_SERVED_ADAPTERS = 64;

/** An adapter with the name requests choose it by. */
export interface NamedAdapter {
  name: string;
  adapter: LoraAdapter;
}

/** Where one target sits in a stack: its output rows in the base tensor and its stacked rank columns. */
export interface StackSlot {
  target: LoraTarget;
  /** First output row in the base tensor, and how many. */
  rowOffset: number;
  outDim: number;
  /** First column of the stacked rank, and the widest rank any adapter gives the target. */
  rankOffset: number;
  rank: number;
}

/** The stacked adapters of one base tensor [out, in]. */
export interface LoraStack {
  /** The base tensor (canonical name), and the layer it belongs to. */
  tensor: string;
  layer: number;
  inDim: number;
  outDim: number;
  /** Stacked rank R: the slots' ranks side by side. */
  rank: number;
  slots: StackSlot[];
  /** Each adapter's modules on this tensor, in the adapters' order (none: it leaves it as is). */
  sources: LoraModule[][];
}

/** Dims of a stack's tensors for `adapters` adapters (slot 0 being the base). */
export function loraStackDims(
  stack: LoraStack,
  adapters: number,
): { a: [number, number, number]; b: [number, number, number] } {
  return {
    a: [adapters + 1, stack.inDim, stack.rank],
    b: [adapters + 1, stack.rank, stack.outDim],
  };
}

/** Checks the names: a valid, distinct name each, and no more than {@link MAX_SERVED_ADAPTERS}. */
export function checkAdapterNames(names: readonly string[]): void {
  if (names.length > MAX_SERVED_ADAPTERS)
    throw new InvalidArgumentError(
      `${names.length} adapters given; a deployment serves at most ${MAX_SERVED_ADAPTERS} side by side`,
    );
  const seen = new Set<string>();
  for (const name of names) {
    if (!ADAPTER_NAME.test(name))
      throw new InvalidArgumentError(
        `--adapter names its adapter ${JSON.stringify(name)}; a name is 1-64 letters, digits, '.', '_' and '-'`,
      );
    if (seen.has(name))
      throw new InvalidArgumentError(`two adapters are named ${JSON.stringify(name)}`);
    seen.add(name);
  }
}

/**
 * The stacks a shard of layers [start, end) needs to serve `adapters`, in the order the
 * base tensors appear; none when no adapter touches those layers. Each adapter is checked
 * against the model first (its base, tensors and shapes).
 * @throws AdapterBaseMismatchError or AdapterInvalidError
 */
export function planLoraStacks(
  adapters: readonly NamedAdapter[],
  manifest: LlamaManifest,
  range: { start: number; end: number },
): LoraStack[] {
  checkAdapterNames(adapters.map((a) => a.name));
  const byTensor = new Map<string, Map<LoraTarget, LoraModule>>();
  // Each adapter's modules by tensor, checked against the model once.
  const perAdapter = adapters.map(({ adapter }) => modulesByTensor(adapter, manifest));
  for (const modulesOf of perAdapter) {
    for (const [tensor, modules] of modulesOf) {
      const layer = modules[0]!.layer;
      if (layer < range.start || layer >= range.end) continue;
      const targets = byTensor.get(tensor) ?? new Map<LoraTarget, LoraModule>();
      for (const module of modules) {
        const widest = targets.get(module.target);
        if (!widest || module.rank > widest.rank) targets.set(module.target, module);
      }
      byTensor.set(tensor, targets);
    }
  }
  const stacks: LoraStack[] = [];
  for (const [tensor, targets] of byTensor) {
    const modules = [...targets.values()].sort((a, b) => a.rowOffset - b.rowOffset);
    let rank = 0;
    const slots = modules.map((m) => {
      const slot = {
        target: m.target,
        rowOffset: m.rowOffset,
        outDim: m.outDim,
        rankOffset: rank,
        rank: m.rank,
      };
      rank += m.rank;
      return slot;
    });
    const { layer, inDim } = modules[0]!;
    stacks.push({
      tensor,
      layer,
      inDim,
      outDim: tensorRows(manifest.config, layer, tensor),
      rank,
      slots,
      sources: perAdapter.map((modulesOf) => modulesOf.get(tensor) ?? []),
    });
  }
  // Layer by layer, each layer's tensors in the order its targets are listed.
  const order = (stack: LoraStack) => {
    const { layer, target } = [...byTensor.get(stack.tensor)!.values()][0]!;
    return layer * LORA_TARGETS.length + LORA_TARGETS.indexOf(target);
  };
  return stacks.sort((a, b) => order(a) - order(b));
}

/**
 * A stack's A and B filled from the adapters it was planned for (the same, in the same
 * order): slot n + 1 holds adapter n, slot 0 stays zero.
 * A is laid out [N+1, in, R] (Aᵀ per slot, ready to multiply rows by), B [N+1, R, out]
 * with each module's scale folded in.
 */
export function fillLoraStack(
  stack: LoraStack,
  adapters: readonly NamedAdapter[],
): { a: Float32Array; b: Float32Array } {
  const { inDim, outDim, rank } = stack;
  const a = new Float32Array((adapters.length + 1) * inDim * rank);
  const b = new Float32Array((adapters.length + 1) * rank * outDim);
  for (const [n, { adapter }] of adapters.entries()) {
    const modules = stack.sources[n] ?? [];
    const slotA = (n + 1) * inDim * rank;
    const slotB = (n + 1) * rank * outDim;
    for (const module of modules) {
      const place = stack.slots.find((s) => s.target === module.target)!;
      const loraA = adapter.tensors.get(loraTensor.a(module.layer, module.target))!;
      const loraB = adapter.tensors.get(loraTensor.b(module.layer, module.target))!;
      for (let r = 0; r < module.rank; r++) {
        const column = place.rankOffset + r;
        for (let i = 0; i < inDim; i++) a[slotA + i * rank + column] = loraA[r * inDim + i]!;
        const rowB = slotB + column * outDim + place.rowOffset;
        for (let o = 0; o < module.outDim; o++)
          b[rowB + o] = module.scale * loraB[o * module.rank + r]!;
      }
    }
  }
  return { a, b };
}

/** A content id of the adapters served side by side, in order, with their names. */
export function servedAdaptersId(adapters: readonly NamedAdapter[]): string {
  return sha256('served', ...adapters.flatMap((a) => [a.name, adapterHash(a.adapter)]));
}

/** Output rows of base tensor `tensor` of `layer`: every target it holds, adapted or not. */
function tensorRows(config: LlamaConfig, layer: number, tensor: string): number {
  let rows = 0;
  for (const target of LORA_TARGETS) {
    const place = targetPlace(config, layer, target);
    if (place.tensor === tensor) rows = Math.max(rows, place.rowOffset + place.outDim);
  }
  return rows;
}

/**
 * The bytes each layer's stacks add to a shard serving `adapters` (fp32 A and B of every
 * slot, the base's zeros included), by layer: what a plan must count beside the layer's
 * own weights. (Their 4-byte alignment adds at most 3 bytes a tensor, not counted.)
 */
export function servedAdapterLayerBytes(
  adapters: readonly NamedAdapter[],
  manifest: LlamaManifest,
): number[] {
  const { nLayers } = manifest.config;
  const bytes = new Array<number>(nLayers).fill(0);
  if (adapters.length === 0) return bytes;
  for (const stack of planLoraStacks(adapters, manifest, { start: 0, end: nLayers })) {
    const { a, b } = loraStackDims(stack, adapters.length);
    bytes[stack.layer]! += 4 * (a[0] * a[1] * a[2] + b[0] * b[1] * b[2]);
  }
  return bytes;
}
