/**
 * What a Gemma 3 text config adds to the Llama shape, as transformers'
 * `Gemma3TextConfig` and `Gemma3ForCausalLM` compute it: the local/global layer
 * pattern with two RoPEs, the embedding and attention scales, post-norms, GELU-tanh
 * and the final logit soft-cap. Refused: attention soft-capping (transformers 5
 * stores but never applies it, so a checkpoint that sets it expects another
 * implementation) and bidirectional attention.
 */
import {
  type LayerAttention,
  type LlamaConfig,
  ModelUnsupportedError,
  type RopeSpec,
} from '@swarmbee/core';
import { layerTypes } from './layer-types.js';
import { type RopeContext, ropeFromParameters } from './rope-config.js';

type Json = Record<string, unknown>;

/** transformers' Gemma3TextConfig defaults. */
const DEFAULT_GLOBAL_THETA = 1_000_000;
const DEFAULT_LOCAL_THETA = 10_000;
const DEFAULT_SLIDING_WINDOW_PATTERN = 6;
const DEFAULT_QUERY_PRE_ATTN_SCALAR = 256;

export interface GemmaFields {
  /** RoPE of full-attention (global) layers. */
  rope: RopeSpec;
  /** RoPE of sliding-window (local) layers. */
  localRope: RopeSpec;
  layerAttention: LayerAttention[];
  fields: Pick<
    LlamaConfig,
    | 'postNorms'
    | 'activation'
    | 'embeddingScale'
    | 'attentionScale'
    | 'finalLogitSoftcap'
    | 'localRope'
  >;
}

export function gemmaFields(
  c: Json,
  where: string,
  shape: { dim: number; nLayers: number; ropeContext: RopeContext },
): GemmaFields {
  const unsupported = (what: string): never => {
    throw new ModelUnsupportedError(`${where}: config.json ${what}`);
  };
  if (c.attn_logit_softcapping !== undefined && c.attn_logit_softcapping !== null)
    unsupported(
      `attn_logit_softcapping ${JSON.stringify(c.attn_logit_softcapping)}: transformers' Gemma 3 does not apply it, so SwarmBee cannot match a model that relies on it`,
    );
  if (c.use_bidirectional_attention === true)
    unsupported('use_bidirectional_attention is true: SwarmBee builds causal decoders');
  const cap = c.final_logit_softcapping;
  if (cap !== undefined && cap !== null && !(typeof cap === 'number' && cap > 0))
    unsupported(`final_logit_softcapping ${JSON.stringify(cap)} is not a positive number`);
  const scalar = c.query_pre_attn_scalar ?? DEFAULT_QUERY_PRE_ATTN_SCALAR;
  if (typeof scalar !== 'number' || !(scalar > 0))
    unsupported(`query_pre_attn_scalar ${JSON.stringify(scalar)} is not a positive number`);

  const { rope, localRope } = gemmaRopes(c, shape.ropeContext);
  const layerAttention =
    c.layer_types !== undefined && c.layer_types !== null
      ? layerTypes(c.layer_types, shape.nLayers, where)
      : patternLayers(c, shape.nLayers, where);
  const fields: GemmaFields['fields'] = {
    postNorms: true,
    activation: 'gelu-tanh',
    embeddingScale: roundToDtype(Math.sqrt(shape.dim), c.dtype ?? c.torch_dtype),
    attentionScale: Math.fround((scalar as number) ** -0.5),
    localRope,
  };
  if (typeof cap === 'number') fields.finalLogitSoftcap = cap;
  return { rope, localRope, layerAttention, fields };
}

/** Global and local RoPE, from `rope_parameters` nested by layer type, or from the older keys. */
function gemmaRopes(c: Json, context: RopeContext): { rope: RopeSpec; localRope: RopeSpec } {
  const nested = c.rope_parameters;
  if (nested !== undefined && nested !== null) {
    const byType = nested as Json;
    for (const key of Object.keys(byType))
      if (key !== 'full_attention' && key !== 'sliding_attention')
        throw new ModelUnsupportedError(
          `${context.where}: config.json rope_parameters.${key}: Gemma 3 RoPE is given per layer type (full_attention, sliding_attention)`,
        );
    return {
      rope: ropeFromParameters(
        byType.full_attention as Json | undefined,
        numberOr(c.rope_theta, DEFAULT_GLOBAL_THETA),
        context,
        'rope_parameters.full_attention',
      ),
      localRope: ropeFromParameters(
        byType.sliding_attention as Json | undefined,
        numberOr(c.rope_local_base_freq, DEFAULT_LOCAL_THETA),
        context,
        'rope_parameters.sliding_attention',
      ),
    };
  }
  // Older layout: rope_scaling applies to the global layers only.
  return {
    rope: ropeFromParameters(
      (c.rope_scaling as Json | null | undefined) ?? null,
      numberOr(c.rope_theta, DEFAULT_GLOBAL_THETA),
      context,
      'rope_scaling',
    ),
    localRope: { theta: numberOr(c.rope_local_base_freq, DEFAULT_LOCAL_THETA) },
  };
}

/** Every `sliding_window_pattern`-th layer is global, the others local. */
function patternLayers(c: Json, nLayers: number, where: string): LayerAttention[] {
  const pattern =
    c.sliding_window_pattern ?? c._sliding_window_pattern ?? DEFAULT_SLIDING_WINDOW_PATTERN;
  if (typeof pattern !== 'number' || !Number.isSafeInteger(pattern) || pattern < 1)
    throw new ModelUnsupportedError(
      `${where}: config.json sliding_window_pattern ${JSON.stringify(pattern)} is not a positive integer`,
    );
  return Array.from({ length: nLayers }, (_, l) => ((l + 1) % pattern === 0 ? 'full' : 'sliding'));
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

/**
 * `value` as transformers holds Gemma's embedding scale: a float32 tensor cast to the
 * weights' dtype (bf16 makes √1152 = 33.94 into 34). Model dirs compute in float32,
 * with the scale the checkpoint was trained and published with.
 */
export function roundToDtype(value: number, dtype: unknown): number {
  const single = Math.fround(value);
  const mantissaBits = dtype === 'bfloat16' ? 7 : dtype === 'float16' ? 10 : undefined;
  if (mantissaBits === undefined || single === 0) return single;
  const ulp = 2 ** (Math.floor(Math.log2(Math.abs(single))) - mantissaBits);
  const scaled = single / ulp;
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  // Round half to even, as a float32 → bf16/fp16 cast does.
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return rounded * ulp;
}
