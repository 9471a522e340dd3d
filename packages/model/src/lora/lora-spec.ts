/**
 * What a LoRA adapter is, independent of any file format: rank r and alpha on chosen
 * projections of chosen layers. Each adapted projection W ([out, in]) gains
 * `scale · B · A` with A [r, in] and B [out, r], `scale = alpha / r` (or alpha / √r with
 * rank-stabilised LoRA), as Hugging Face PEFT defines it.
 *
 * SwarmBee stores q/k/v fused as `wqkv` and gate/up as `w13` (see llama-tensors.ts); a
 * target names one projection and the rows of its fused tensor. The rows are already in
 * Hugging Face's rotate-half order for every model dir (llama2.c checkpoints are permuted
 * on import), so an adapter's B rows line up with PEFT's `q_proj` / `k_proj` rows as they
 * are: no permutation, whichever way the model came in.
 */
import { headDim, InvalidArgumentError, type LlamaConfig } from '@swarmbee/core';
import { layerTensor } from '../llama-tensors.js';

/** The projections a LoRA adapter can target, by their Hugging Face module names. */
export const LORA_TARGETS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The attention projections; the others belong to the MLP (PEFT's `self_attn` / `mlp` modules). */
export const ATTENTION_TARGETS: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

export interface LoraSpec {
  /** Rank r of every adapted projection. */
  rank: number;
  /** PEFT's `lora_alpha`: the update is scaled by alpha / r (alpha / √r with `rsLora`). */
  alpha: number;
  /** Projections adapted in each chosen layer. */
  targets: LoraTarget[];
  /** Layers adapted, ascending. */
  layers: number[];
  /** Rank-stabilised LoRA (PEFT `use_rslora`): scale alpha / √r instead of alpha / r. */
  rsLora?: boolean;
}

/** Defaults of `swarmbee finetune`: rank 8, alpha 16, q and v of every layer (PEFT's own default targets for Llama). */
export const DEFAULT_LORA_RANK = 8;
export const DEFAULT_LORA_ALPHA = 16;
export const DEFAULT_LORA_TARGETS: LoraTarget[] = ['q_proj', 'v_proj'];

/** Where one target lives in SwarmBee's fused weights, and its shape. */
export interface TargetPlace {
  /** The model-dir tensor holding the projection (fused for q/k/v and gate/up). */
  tensor: string;
  /** First row of the projection inside that tensor. */
  rowOffset: number;
  /** Rows (output features) and columns (input features) of the projection. */
  outDim: number;
  inDim: number;
}

export function targetPlace(config: LlamaConfig, layer: number, target: LoraTarget): TargetPlace {
  const hd = headDim(config);
  const qDim = config.nHeads * hd;
  const kvDim = config.nKvHeads * hd;
  const { dim, hiddenDim } = config;
  switch (target) {
    case 'q_proj':
      return { tensor: layerTensor.wqkv(layer), rowOffset: 0, outDim: qDim, inDim: dim };
    case 'k_proj':
      return { tensor: layerTensor.wqkv(layer), rowOffset: qDim, outDim: kvDim, inDim: dim };
    case 'v_proj':
      return {
        tensor: layerTensor.wqkv(layer),
        rowOffset: qDim + kvDim,
        outDim: kvDim,
        inDim: dim,
      };
    case 'o_proj':
      return { tensor: layerTensor.wo(layer), rowOffset: 0, outDim: dim, inDim: qDim };
    case 'gate_proj':
      return { tensor: layerTensor.w13(layer), rowOffset: 0, outDim: hiddenDim, inDim: dim };
    case 'up_proj':
      return {
        tensor: layerTensor.w13(layer),
        rowOffset: hiddenDim,
        outDim: hiddenDim,
        inDim: dim,
      };
    case 'down_proj':
      return { tensor: layerTensor.w2(layer), rowOffset: 0, outDim: dim, inDim: hiddenDim };
  }
}

/** One adapted projection: its place, rank and the scale of its update. */
export interface LoraModule extends TargetPlace {
  layer: number;
  target: LoraTarget;
  rank: number;
  scale: number;
}

/** The LoRA tensors of one module, by SwarmBee's internal names. */
export const loraTensor = {
  a: (layer: number, target: LoraTarget) => `layers.${layer}.${target}.lora_A`,
  b: (layer: number, target: LoraTarget) => `layers.${layer}.${target}.lora_B`,
} as const;

export function loraScale(spec: Pick<LoraSpec, 'rank' | 'alpha' | 'rsLora'>): number {
  return spec.rsLora ? spec.alpha / Math.sqrt(spec.rank) : spec.alpha / spec.rank;
}

/** Checks a spec against a model's shape; throws a coded error naming the bad field. */
export function checkLoraSpec(spec: LoraSpec, config: LlamaConfig): void {
  if (!Number.isInteger(spec.rank) || spec.rank < 1)
    throw new InvalidArgumentError(`LoRA rank must be a positive integer, got ${spec.rank}`);
  if (!(Number.isFinite(spec.alpha) && spec.alpha > 0))
    throw new InvalidArgumentError(`LoRA alpha must be a positive number, got ${spec.alpha}`);
  if (spec.targets.length === 0)
    throw new InvalidArgumentError('a LoRA adapter needs at least one target projection');
  for (const target of spec.targets) {
    if (!LORA_TARGETS.includes(target))
      throw new InvalidArgumentError(
        `unknown LoRA target ${target}; choose from ${LORA_TARGETS.join(', ')}`,
      );
  }
  if (new Set(spec.targets).size !== spec.targets.length)
    throw new InvalidArgumentError(`LoRA targets repeat: ${spec.targets.join(', ')}`);
  if (spec.layers.length === 0)
    throw new InvalidArgumentError('a LoRA adapter needs at least one layer');
  spec.layers.forEach((layer, i) => {
    if (!Number.isInteger(layer) || layer < 0 || layer >= config.nLayers)
      throw new InvalidArgumentError(
        `LoRA layer ${layer} is not a layer of this ${config.nLayers}-layer model`,
      );
    if (i > 0 && layer <= spec.layers[i - 1]!)
      throw new InvalidArgumentError(`LoRA layers must be ascending and distinct: ${spec.layers}`);
  });
}

/** Every adapted module, layer by layer, targets in {@link LORA_TARGETS} order. */
export function loraModules(spec: LoraSpec, config: LlamaConfig): LoraModule[] {
  checkLoraSpec(spec, config);
  const scale = loraScale(spec);
  const modules: LoraModule[] = [];
  for (const layer of spec.layers) {
    for (const target of LORA_TARGETS) {
      if (!spec.targets.includes(target)) continue;
      modules.push({
        ...targetPlace(config, layer, target),
        layer,
        target,
        rank: spec.rank,
        scale,
      });
    }
  }
  return modules;
}

/** Shapes of a module's two tensors: A [r, in], B [out, r]. */
export function loraShapes(module: LoraModule): { a: [number, number]; b: [number, number] } {
  return { a: [module.rank, module.inDim], b: [module.outDim, module.rank] };
}
