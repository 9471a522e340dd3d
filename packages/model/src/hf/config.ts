/**
 * Hugging Face `config.json` to a {@link LlamaConfig}, refusing what the Llama
 * graph builder cannot honour — with the value found in the message, never a
 * silent approximation.
 */
import {
  HfCheckpointInvalidError,
  InvalidArgumentError,
  type LlamaConfig,
  ModelUnsupportedError,
} from '@swarmbee/core';

/** Architectures the Llama builder serves, with transformers' defaults for absent fields. */
export const HF_ARCHITECTURES = {
  LlamaForCausalLM: { modelType: 'llama', qkvBias: false },
  MistralForCausalLM: { modelType: 'mistral', qkvBias: false },
  // Qwen2's attention always has q/k/v biases (and none on o_proj).
  Qwen2ForCausalLM: { modelType: 'qwen2', qkvBias: true },
} as const;

export type HfArchitecture = keyof typeof HF_ARCHITECTURES;

/** transformers' defaults for the fields a config may leave out (LlamaConfig, MistralConfig, Qwen2Config). */
const DEFAULT_RMS_NORM_EPS = 1e-6;
const DEFAULT_ROPE_THETA = 10_000;

export interface HfModelConfig {
  architecture: HfArchitecture;
  config: LlamaConfig;
  /** `bos_token_id` of config.json, when it names one. */
  bosTokenId?: number;
  /** `eos_token_id` of config.json (a number or a list). */
  eosTokenIds: number[];
}

export interface HfConfigOptions {
  /**
   * Context to record, in tokens; default `max_position_embeddings`. Must not exceed
   * it; a shorter context lets a model with a sliding window import (within the
   * window, sliding attention is full attention).
   */
  contextLength?: number;
}

export function parseHfConfig(
  json: unknown,
  where: string,
  options: HfConfigOptions = {},
): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new HfCheckpointInvalidError(`${where}: config.json is not a JSON object`);
  const c = json as Record<string, unknown>;
  const architectures = Array.isArray(c.architectures) ? c.architectures : [];
  const name = architectures[0];
  if (typeof name !== 'string' || !(name in HF_ARCHITECTURES)) {
    throw new ModelUnsupportedError(
      `${where}: architecture ${JSON.stringify(name ?? null)} (model_type ${JSON.stringify(c.model_type ?? null)}) ` +
        `is not one SwarmBee builds; it builds ${Object.keys(HF_ARCHITECTURES).join(', ')}`,
    );
  }
  const architecture = name as HfArchitecture;
  const spec = HF_ARCHITECTURES[architecture];
  const int = (key: string, fallback?: number): number => {
    const value = c[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
      throw new HfCheckpointInvalidError(
        `${where}: config.json ${key} is ${JSON.stringify(value ?? null)}, not a positive integer`,
      );
    return value;
  };
  const number = (key: string, fallback: number): number => {
    const value = c[key] ?? fallback;
    if (typeof value !== 'number' || !(value > 0))
      throw new HfCheckpointInvalidError(
        `${where}: config.json ${key} is ${JSON.stringify(value)}, not a positive number`,
      );
    return value;
  };
  const unsupported = (what: string): never => {
    throw new ModelUnsupportedError(`${where}: ${what}`);
  };

  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
  const maxPositions = int('max_position_embeddings');
  if (dim % nHeads !== 0)
    throw new HfCheckpointInvalidError(
      `${where}: hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads}`,
    );
  if (nHeads % nKvHeads !== 0)
    throw new HfCheckpointInvalidError(
      `${where}: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`,
    );
  const headSize = dim / nHeads;
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== headSize)
    unsupported(
      `head_dim ${JSON.stringify(c.head_dim)} differs from hidden_size / num_attention_heads = ${headSize}; the builder derives the head size from the width`,
    );
  if (headSize % 2 !== 0) unsupported(`head size ${headSize} is odd; RoPE needs pairs`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null)
    unsupported(
      `rope_scaling ${JSON.stringify(c.rope_scaling)} is set; the builder applies plain RoPE only`,
    );
  const partial = c.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    unsupported(
      `partial_rotary_factor ${JSON.stringify(partial)}: the builder rotates whole heads`,
    );
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu';
  if (act !== 'silu')
    unsupported(`hidden_act ${JSON.stringify(act)}: the builder's feed-forward is SwiGLU (silu)`);
  if (c.attention_bias === true)
    unsupported(
      'attention_bias is true (biases on q, k, v and o projections); the builder supports q/k/v biases only, as Qwen2 has them',
    );
  if (c.mlp_bias === true) unsupported('mlp_bias is true; the builder has no feed-forward biases');

  const contextLength = options.contextLength ?? maxPositions;
  if (!Number.isSafeInteger(contextLength) || contextLength < 1 || contextLength > maxPositions)
    throw new InvalidArgumentError(
      `context ${contextLength} must be a positive integer no larger than max_position_embeddings ${maxPositions}`,
    );
  const window = slidingWindow(c, architecture);
  if (window !== undefined && window < contextLength)
    unsupported(
      `sliding_window ${window} is shorter than the context ${contextLength}: the builder attends to the whole context, ` +
        `so tokens beyond the window would be attended differently; import with a context of at most ${window} tokens (--context ${window})`,
    );

  const config: LlamaConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    vocabSize: int('vocab_size'),
    maxSeqLen: contextLength,
    normEps: number('rms_norm_eps', DEFAULT_RMS_NORM_EPS),
    ropeTheta: number('rope_theta', DEFAULT_ROPE_THETA),
    sharedClassifier: c.tie_word_embeddings === true,
  };
  if (spec.qkvBias) config.qkvBias = true;
  const result: HfModelConfig = { architecture, config, eosTokenIds: tokenIds(c.eos_token_id) };
  const [bos] = tokenIds(c.bos_token_id);
  if (bos !== undefined) result.bosTokenId = bos;
  return result;
}

/** The sliding window in force, if any: Qwen2 uses one only with `use_sliding_window`. */
function slidingWindow(
  c: Record<string, unknown>,
  architecture: HfArchitecture,
): number | undefined {
  if (architecture === 'Qwen2ForCausalLM' && c.use_sliding_window !== true) return undefined;
  const window = c.sliding_window;
  return typeof window === 'number' && window > 0 ? window : undefined;
}

/** A token id field that may be a number, a list of numbers, or null. */
export function tokenIds(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v): v is number => Number.isSafeInteger(v) && (v as number) >= 0);
}
