/**
 * What a `gemma3` GGUF adds to the Llama shape, as llama.cpp computes it (load_hparams'
 * LLM_ARCH_GEMMA3 and its Gemma 3 graph), onto the same {@link LlamaConfig} fields the
 * Hugging Face import fills for Gemma 3 — one graph builder for both:
 *
 * - the embedding times √dim, in float32 (llama.cpp's `sqrtf(n_embd)`; transformers rounds
 *   it to the checkpoint's dtype, which only a bf16/fp16 checkpoint notices);
 * - queries scaled by `key_length^-½` — llama.cpp's rule, since no GGUF key carries
 *   `query_pre_attn_scalar` (the 27B, 62 layers, takes `(dim / heads)^-½`, as Gemma 3 27B sets it);
 * - RMSNorm after attention and after the feed-forward (`post_attention_norm`,
 *   `post_ffw_norm`), GELU-tanh gated feed-forward; norm weights are stored with their +1
 *   (converters add it), which is what a model dir stores for Gemma, so they are copied;
 * - with `attention.sliding_window` set: every sixth layer global, the others local with
 *   that window and RoPE base 10000 (llama.cpp fixes both); `rope.freq_base` and the
 *   linear scaling are the global layers';
 * - `final_logit_softcapping` when set and positive.
 */
import { type LayerAttention, type LlamaConfig, ModelUnsupportedError } from '@swarmbee/core';
import { type GgufKeys, preview } from './gguf-keys.js';

/** llama.cpp's Gemma 3: every sixth layer attends globally (`set_swa_pattern(6)`). */
export const GEMMA3_SWA_PATTERN = 6;
/** llama.cpp's Gemma 3 RoPE base of the local (sliding-window) layers. */
export const GEMMA3_LOCAL_ROPE_THETA = 10_000;
/** Gemma 3 27B, whose queries llama.cpp scales by (dim / heads)^-½. */
const GEMMA3_27B_LAYERS = 62;

export type Gemma3Fields = Pick<
  LlamaConfig,
  | 'postNorms'
  | 'activation'
  | 'embeddingScale'
  | 'attentionScale'
  | 'finalLogitSoftcap'
  | 'slidingWindow'
  | 'layerAttention'
  | 'localRope'
>;

export function gemma3Fields(
  keys: GgufKeys,
  shape: { dim: number; nHeads: number; nLayers: number; headSize: number },
): Gemma3Fields {
  const key = (suffix: string) => `gemma3.${suffix}`;
  const unsupported = (what: string): never => {
    throw new ModelUnsupportedError(`${keys.name}: ${what}`);
  };
  const localBase = key('rope.freq_base_swa');
  if (keys.has(localBase) && keys.number(localBase) !== GEMMA3_LOCAL_ROPE_THETA)
    unsupported(
      `${localBase} is ${preview(keys.raw(localBase)!)}; llama.cpp's gemma3 gives its local layers RoPE base ${GEMMA3_LOCAL_ROPE_THETA} whatever the file says, and SwarmBee computes what llama.cpp computes`,
    );
  const queryScalar =
    shape.nLayers === GEMMA3_27B_LAYERS ? Math.floor(shape.dim / shape.nHeads) : shape.headSize;
  const fields: Gemma3Fields = {
    postNorms: true,
    activation: 'gelu-tanh',
    embeddingScale: Math.fround(Math.sqrt(shape.dim)),
    attentionScale: Math.fround(1 / Math.fround(Math.sqrt(queryScalar))),
  };
  const cap = keys.number(key('final_logit_softcapping'), 0);
  if (cap < 0) unsupported(`${key('final_logit_softcapping')} is ${cap}, not positive`);
  if (cap > 0) fields.finalLogitSoftcap = cap;
  const window = keys.uint(key('attention.sliding_window'), 0);
  if (window > 0) {
    fields.slidingWindow = window;
    fields.layerAttention = Array.from(
      { length: shape.nLayers },
      (_, l): LayerAttention => ((l + 1) % GEMMA3_SWA_PATTERN === 0 ? 'full' : 'sliding'),
    );
    fields.localRope = { theta: GEMMA3_LOCAL_ROPE_THETA };
  }
  return fields;
}
