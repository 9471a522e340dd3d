/**
 * The Hugging Face architectures SwarmBee builds, with what sets each apart and
 * the config.json keys transformers' class for it reads. docs/MODELS.md is the
 * same table in prose; a key outside these lists is refused, never ignored.
 */

export interface HfFamily {
  /** `model_type` values transformers gives this class's configs. */
  modelTypes: readonly string[];
  /** q/k/v projections always carry a bias (Qwen2). */
  qkvBias?: true;
  /** Per-head RMSNorm of q and k (Qwen3, Gemma 3). */
  qkNorm?: true;
  /** q/k/v and gate/up come fused as `qkv_proj` and `gate_up_proj` (Phi-3). */
  fused?: true;
  /** Gemma: (1 + w) norms, post-norms, √dim embedding scale, GELU-tanh, local/global layers. */
  gemma?: true;
  /** How the sliding window is switched on: always when set (Mistral, Phi-3), `use_sliding_window` (Qwen), layer types (Gemma 3). */
  window: 'when-set' | 'qwen' | 'gemma' | 'none';
  /** transformers' defaults for keys a config may leave out. */
  defaults: {
    rmsNormEps: number;
    ropeTheta: number;
    tied: boolean;
    /** Absent `num_key_value_heads`: a number, or null for "as many as query heads". */
    kvHeads: number | null;
    /** Absent `head_dim`: a number, or null for hidden_size / num_attention_heads. */
    headDim: number | null;
    slidingWindow: number | null;
  };
  /** Keys this family's class reads beyond {@link COMMON_KEYS}. */
  keys: readonly string[];
}

const ROPE_KEYS = ['rope_theta', 'rope_scaling', 'rope_parameters'] as const;

export const HF_FAMILIES = {
  LlamaForCausalLM: {
    modelTypes: ['llama'],
    window: 'none',
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10_000,
      tied: false,
      kvHeads: null,
      headDim: null,
      slidingWindow: null,
    },
    keys: [...ROPE_KEYS, 'head_dim', 'hidden_act', 'pretraining_tp'],
  },
  MistralForCausalLM: {
    modelTypes: ['mistral'],
    window: 'when-set',
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10_000,
      tied: false,
      kvHeads: 8,
      headDim: null,
      slidingWindow: 4096,
    },
    keys: [...ROPE_KEYS, 'head_dim', 'hidden_act', 'sliding_window'],
  },
  Qwen2ForCausalLM: {
    modelTypes: ['qwen2'],
    qkvBias: true,
    window: 'qwen',
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10_000,
      tied: false,
      kvHeads: 32,
      headDim: null,
      slidingWindow: 4096,
    },
    keys: [
      ...ROPE_KEYS,
      'hidden_act',
      'use_sliding_window',
      'sliding_window',
      'max_window_layers',
      'layer_types',
    ],
  },
  Qwen3ForCausalLM: {
    modelTypes: ['qwen3'],
    qkNorm: true,
    window: 'qwen',
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10_000,
      tied: false,
      kvHeads: 32,
      headDim: 128,
      slidingWindow: 4096,
    },
    keys: [
      ...ROPE_KEYS,
      'head_dim',
      'hidden_act',
      'use_sliding_window',
      'sliding_window',
      'max_window_layers',
      'layer_types',
    ],
  },
  Phi3ForCausalLM: {
    modelTypes: ['phi3'],
    fused: true,
    window: 'when-set',
    defaults: {
      rmsNormEps: 1e-5,
      ropeTheta: 10_000,
      tied: false,
      kvHeads: null,
      headDim: null,
      slidingWindow: null,
    },
    keys: [
      ...ROPE_KEYS,
      'hidden_act',
      'sliding_window',
      'original_max_position_embeddings',
      'partial_rotary_factor',
      'embd_pdrop',
      'resid_pdrop',
    ],
  },
  Gemma3ForCausalLM: {
    modelTypes: ['gemma3_text'],
    qkNorm: true,
    gemma: true,
    window: 'gemma',
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 1_000_000,
      tied: true,
      kvHeads: 4,
      headDim: 256,
      slidingWindow: 4096,
    },
    keys: [
      ...ROPE_KEYS,
      'head_dim',
      'hidden_activation',
      'query_pre_attn_scalar',
      'sliding_window',
      'layer_types',
      'sliding_window_pattern',
      '_sliding_window_pattern',
      'rope_local_base_freq',
      'final_logit_softcapping',
      'attn_logit_softcapping',
      'use_bidirectional_attention',
    ],
  },
} as const satisfies Record<string, HfFamily>;

export type HfArchitecture = keyof typeof HF_FAMILIES;

/** Keys every family reads. */
export const COMMON_KEYS = [
  'architectures',
  'model_type',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'vocab_size',
  'max_position_embeddings',
  'rms_norm_eps',
  'tie_word_embeddings',
  'bos_token_id',
  'eos_token_id',
  // Refused when true: biases on the o projection or the feed-forward.
  'attention_bias',
  'mlp_bias',
  // Read for Gemma's embedding scale (rounded to the checkpoint's dtype).
  'torch_dtype',
  'dtype',
] as const;

/**
 * Keys that do not change the forward pass: bookkeeping, training-only dropout,
 * defaults for generation, and `auto_map` (remote code transformers' own class
 * replaces).
 */
export const INERT_KEYS = [
  'transformers_version',
  '_name_or_path',
  'initializer_range',
  'use_cache',
  'attention_dropout',
  'pad_token_id',
  'auto_map',
  'cache_implementation',
  'output_attentions',
  'output_hidden_states',
  'return_dict',
  'is_decoder',
  '_attn_implementation_autoset',
] as const;
