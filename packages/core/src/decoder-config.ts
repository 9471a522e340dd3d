/**
 * The shape and numerics of a decoder SwarmBee builds graphs for — Llama and the
 * families that differ from it in a few blocks (Qwen2/3, Mistral, Phi-3, Gemma 3).
 * Every field beyond the Llama core is optional, and its absence means plain Llama
 * (llama2.c) behaviour, so model dirs written before a field existed read the same.
 * docs/MODELS.md maps each Hugging Face config key onto these fields.
 */

/**
 * How RoPE's inverse frequencies are scaled (transformers' `rope_type`). Frequencies
 * start from `theta^(-2i/headDim)`:
 * - `linear`: all divided by `factor`.
 * - `dynamic` (NTK): the base grows with the length seen: position p rotates with
 *   `theta · (factor · L / originalContext − (factor − 1))^(hd/(hd−2))`, L = max(p + 1,
 *   originalContext) — what transformers computes for a token decoded at p.
 * - `llama3`: long wavelengths divided by `factor`, short ones kept, a smooth ramp between
 *   (`lowFreqFactor`, `highFreqFactor`, `originalContext`).
 * - `longrope` (Phi-3 `su`): each frequency divided by its own factor — `shortFactor` while
 *   a sequence fits `originalContext` (all SwarmBee serves: see docs/MODELS.md) —
 *   and cos/sin multiplied by `attentionFactor`.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number; originalContext: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalContext: number;
    }
  | {
      type: 'longrope';
      /** Per frequency (headDim / 2 of them): the divisors for sequences within `originalContext`. */
      shortFactor: number[];
      /** Recorded for completeness; never applied, because contexts stop at `originalContext`. */
      longFactor: number[];
      originalContext: number;
      /** cos and sin are scaled by this (transformers' `attention_factor`). */
      attentionFactor: number;
    };

/** One RoPE: its base and scaling. */
export interface RopeSpec {
  theta: number;
  scaling?: RopeScaling;
}

/** Attention of one layer: over the whole context, or over a sliding window of recent positions. */
export type LayerAttention = 'full' | 'sliding';

/** Feed-forward gate activation: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU, Gemma). */
export type MlpActivation = 'silu' | 'gelu-tanh';

/** Shape and numerics of a decoder whose shard graphs SwarmBee builds (Llama, Mistral, Qwen2/3, Phi-3, Gemma 3, llama2.c). */
export interface LlamaConfig {
  /** Model (residual stream) width. */
  dim: number;
  /** Feed-forward inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; fewer than `nHeads` means grouped-query attention. */
  nKvHeads: number;
  vocabSize: number;
  /** Longest context the model supports, in tokens (positions). */
  maxSeqLen: number;
  /** RMSNorm epsilon (every norm of the model). */
  normEps: number;
  /** RoPE base frequency (of full-attention layers when {@link localRope} is set). */
  ropeTheta: number;
  /** The LM head reuses the token embedding matrix. */
  sharedClassifier: boolean;
  /**
   * The q/k/v projections add a bias (Qwen2): the model dir then holds a
   * `layers.N.bqkv` vector beside each `wqkv`. Absent means false.
   */
  qkvBias?: boolean;
  /** Size of one attention head. Absent: `dim / nHeads`. Qwen3 and Gemma 3 set it apart. */
  headDim?: number;
  /** RoPE frequency scaling of the layers that use `ropeTheta`. Absent: plain RoPE. */
  ropeScaling?: RopeScaling;
  /**
   * Per-head RMSNorm of queries and keys before RoPE (Qwen3, Gemma 3): tensors
   * `layers.N.q_norm` and `layers.N.k_norm`, [headDim]. Absent means false.
   */
  qkNorm?: boolean;
  /**
   * RMSNorm after attention and after the feed-forward block too, before each residual
   * add (Gemma 3): tensors `layers.N.attn_post_norm` and `layers.N.ffn_post_norm`. Absent means false.
   */
  postNorms?: boolean;
  /** Feed-forward gate activation. Absent: `silu`. */
  activation?: MlpActivation;
  /** Token embeddings are multiplied by this (Gemma: √dim, rounded to the checkpoint's dtype). Absent: 1. */
  embeddingScale?: number;
  /** Attention scores are multiplied by this (Gemma: `query_pre_attn_scalar^-½`). Absent: `1/√headDim`. */
  attentionScale?: number;
  /** Final logits become `cap · tanh(logits / cap)` (Gemma's `final_logit_softcapping`). Absent: none. */
  finalLogitSoftcap?: number;
  /**
   * Sliding-window attention: a query at position q attends positions p with
   * q − W < p ≤ q (W positions, itself included), as transformers masks. Such
   * layers keep a ring of W cache slots. Absent: every layer attends the whole context.
   */
  slidingWindow?: number;
  /**
   * Which layers use the sliding window, by layer. Absent with {@link slidingWindow}
   * set: every layer does (Mistral). Gemma 3 and Qwen2/3 alternate or mix.
   */
  layerAttention?: LayerAttention[];
  /** RoPE of sliding-window layers when it differs from the full layers' (Gemma 3's `rope_local_base_freq`). */
  localRope?: RopeSpec;
}

export function headDim(config: LlamaConfig): number {
  return config.headDim ?? config.dim / config.nHeads;
}

/**
 * The window of layer `layer`, in positions, when it attends a sliding window shorter
 * than the context; undefined when it attends everything (a window at least as long
 * as the context is full attention).
 */
export function layerWindow(config: LlamaConfig, layer: number): number | undefined {
  const window = config.slidingWindow;
  if (window === undefined || window >= config.maxSeqLen) return undefined;
  const kind = config.layerAttention?.[layer] ?? 'sliding';
  return kind === 'sliding' ? window : undefined;
}

/** The RoPE layer `layer` applies: the local one on sliding-window layers when set. */
export function layerRope(config: LlamaConfig, layer: number): RopeSpec {
  const sliding = (config.layerAttention?.[layer] ?? 'sliding') === 'sliding';
  if (config.localRope && config.slidingWindow !== undefined && sliding) return config.localRope;
  return config.ropeScaling
    ? { theta: config.ropeTheta, scaling: config.ropeScaling }
    : { theta: config.ropeTheta };
}

/** Element type of a KV cache: fp32, or fp16 at half the bytes. */
export type KvDtype = 'float32' | 'float16';

/** Bytes of one cached key or value element. */
/**
 * The benchmark model's shape: stories110M's dimensions with a 512-token vocabulary (the
 * `stories110m` synthetic preset of @swarmbee/model, and the planner's benchmark scenarios).
 */
export const STORIES110M_SHAPE: Readonly<
  Pick<
    LlamaConfig,
    'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'vocabSize' | 'maxSeqLen'
  >
> = {
  dim: 768,
  hiddenDim: 2048,
  nLayers: 12,
  nHeads: 12,
  nKvHeads: 12,
  vocabSize: 512,
  maxSeqLen: 1024,
};

export const KV_DTYPE_BYTES: Readonly<Record<KvDtype, number>> = { float32: 4, float16: 2 };

/** Bytes of keys plus values, per token of context, for one layer (fp32 unless `dtype` says). */
export function kvBytesPerTokenPerLayer(config: LlamaConfig, dtype: KvDtype = 'float32'): number {
  return 2 * config.nKvHeads * headDim(config) * KV_DTYPE_BYTES[dtype];
}
