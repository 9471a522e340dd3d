/**
 * Real Hugging Face model shapes for synthetic checkpoints: each `config.json` is the
 * one Meta publishes for the model (meta-llama/Llama-3.2-1B, Llama-3.2-3B,
 * Llama-3.1-8B), so a synthetic checkpoint has the real tensor names, shapes, dtype,
 * vocabulary (128256), GQA (8 KV heads), llama3 RoPE scaling and embedding tying; only
 * the weights are random. `llama3-tiny` has the same structure at a size tests run in
 * milliseconds.
 */

export interface HfSynthShape {
  description: string;
  /** The config.json written into the checkpoint. */
  config: Record<string, unknown>;
  /** generation_config.json. */
  generation: Record<string, unknown>;
}

const LLAMA3_COMMON = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  initializer_range: 0.02,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 128256,
};

const llama3Rope = (factor: number, original: number) => ({
  factor,
  high_freq_factor: 4.0,
  low_freq_factor: 1.0,
  original_max_position_embeddings: original,
  rope_type: 'llama3',
});

const LLAMA3_GENERATION = {
  bos_token_id: 128000,
  do_sample: true,
  eos_token_id: 128001,
  temperature: 0.6,
  top_p: 0.9,
};

export const HF_SYNTH_SHAPES = {
  'llama3.2-1b': {
    description: 'Llama 3.2 1B: 16 layers, dim 2048, 32/8 heads, tied embedding (2.5 GB bf16)',
    config: {
      ...LLAMA3_COMMON,
      head_dim: 64,
      hidden_size: 2048,
      intermediate_size: 8192,
      num_attention_heads: 32,
      num_hidden_layers: 16,
      rope_scaling: llama3Rope(32.0, 8192),
      tie_word_embeddings: true,
      transformers_version: '4.45.0.dev0',
    },
    generation: { ...LLAMA3_GENERATION, transformers_version: '4.45.0.dev0' },
  },
  'llama3.2-3b': {
    description: 'Llama 3.2 3B: 28 layers, dim 3072, 24/8 heads, tied embedding (6.4 GB bf16)',
    config: {
      ...LLAMA3_COMMON,
      head_dim: 128,
      hidden_size: 3072,
      intermediate_size: 8192,
      num_attention_heads: 24,
      num_hidden_layers: 28,
      rope_scaling: llama3Rope(32.0, 8192),
      tie_word_embeddings: true,
      transformers_version: '4.45.0.dev0',
    },
    generation: { ...LLAMA3_GENERATION, transformers_version: '4.45.0.dev0' },
  },
  'llama3.1-8b': {
    description: 'Llama 3.1 8B: 32 layers, dim 4096, 32/8 heads, separate LM head (16 GB bf16)',
    config: {
      ...LLAMA3_COMMON,
      hidden_size: 4096,
      intermediate_size: 14336,
      num_attention_heads: 32,
      num_hidden_layers: 32,
      rope_scaling: llama3Rope(8.0, 8192),
      tie_word_embeddings: false,
      transformers_version: '4.43.0.dev0',
    },
    generation: { ...LLAMA3_GENERATION, transformers_version: '4.43.0.dev0' },
  },
  'llama3-tiny': {
    description:
      'the Llama 3.2 structure at test size: 4 layers, dim 64, 4/2 heads of 16, vocab 512, llama3 RoPE, tied (0.5 MB)',
    config: {
      ...LLAMA3_COMMON,
      bos_token_id: 1,
      eos_token_id: 2,
      head_dim: 16,
      hidden_size: 64,
      intermediate_size: 128,
      max_position_embeddings: 256,
      num_attention_heads: 4,
      num_hidden_layers: 4,
      num_key_value_heads: 2,
      // Wavelengths of head size 16 at base 500000 fall in all three of llama3's bands.
      rope_scaling: llama3Rope(32.0, 32),
      tie_word_embeddings: true,
      transformers_version: '4.45.0.dev0',
      vocab_size: 512,
    },
    generation: { ...LLAMA3_GENERATION, bos_token_id: 1, eos_token_id: 2 },
  },
} satisfies Record<string, HfSynthShape>;

export type HfSynthShapeName = keyof typeof HF_SYNTH_SHAPES;
