/**
 * Which Hugging Face tensors make each canonical tensor of a model dir, with the
 * shape config.json implies for each: per family, q/k/v and gate/up are fused from
 * three and two tensors (or come fused, Phi-3), Qwen3 and Gemma 3 add q/k norms, Gemma
 * 3 its post-norms and `(1 + w)` norm weights.
 */
import { headDim, type LlamaConfig } from '@swarmbee/core';
import { CLASSIFIER, FINAL_NORM, layerTensor, TOKEN_EMBEDDING } from '../llama-tensors.js';
import type { HfFamily } from './families.js';

export interface HfTensorSource {
  /** HF tensor names, concatenated in this order (rows of a fused tensor). */
  names: string[];
  /** The shape each must have. */
  shapes: number[][];
  /** Gemma's norm weights: the model dir stores `1 + w`. */
  plusOne?: boolean;
}

/** Tensors a checkpoint may hold that the import does not read: recomputed RoPE buffers. */
const IGNORED_TENSOR = /\.rotary_emb\.inv_freq$/;

export function hfTensorSources(
  family: HfFamily,
  config: LlamaConfig,
): Map<string, HfTensorSource> {
  const { dim, hiddenDim, nHeads, nKvHeads, vocabSize, nLayers } = config;
  const hd = headDim(config);
  const q = nHeads * hd;
  const kv = nKvHeads * hd;
  const norm = (name: string, size = dim): HfTensorSource => ({
    names: [name],
    shapes: [[size]],
    ...(family.gemma ? { plusOne: true } : {}),
  });
  const sources = new Map<string, HfTensorSource>([
    [TOKEN_EMBEDDING, { names: ['model.embed_tokens.weight'], shapes: [[vocabSize, dim]] }],
    [FINAL_NORM, norm('model.norm.weight')],
  ]);
  if (!config.sharedClassifier)
    sources.set(CLASSIFIER, { names: ['lm_head.weight'], shapes: [[vocabSize, dim]] });
  for (let l = 0; l < nLayers; l++) {
    const at = (part: string) => `model.layers.${l}.${part}`;
    sources.set(layerTensor.attnNorm(l), norm(at('input_layernorm.weight')));
    sources.set(
      layerTensor.wqkv(l),
      family.fused
        ? { names: [at('self_attn.qkv_proj.weight')], shapes: [[q + 2 * kv, dim]] }
        : {
            names: ['q', 'k', 'v'].map((p) => at(`self_attn.${p}_proj.weight`)),
            shapes: [
              [q, dim],
              [kv, dim],
              [kv, dim],
            ],
          },
    );
    if (config.qkvBias)
      sources.set(layerTensor.bqkv(l), {
        names: ['q', 'k', 'v'].map((p) => at(`self_attn.${p}_proj.bias`)),
        shapes: [[q], [kv], [kv]],
      });
    if (config.qkNorm) {
      sources.set(layerTensor.qNorm(l), norm(at('self_attn.q_norm.weight'), hd));
      sources.set(layerTensor.kNorm(l), norm(at('self_attn.k_norm.weight'), hd));
    }
    sources.set(layerTensor.wo(l), { names: [at('self_attn.o_proj.weight')], shapes: [[dim, q]] });
    if (config.postNorms) {
      sources.set(layerTensor.attnPostNorm(l), norm(at('post_attention_layernorm.weight')));
      sources.set(layerTensor.ffnNorm(l), norm(at('pre_feedforward_layernorm.weight')));
      sources.set(layerTensor.ffnPostNorm(l), norm(at('post_feedforward_layernorm.weight')));
    } else {
      sources.set(layerTensor.ffnNorm(l), norm(at('post_attention_layernorm.weight')));
    }
    sources.set(
      layerTensor.w13(l),
      family.fused
        ? { names: [at('mlp.gate_up_proj.weight')], shapes: [[2 * hiddenDim, dim]] }
        : {
            names: [at('mlp.gate_proj.weight'), at('mlp.up_proj.weight')],
            shapes: [
              [hiddenDim, dim],
              [hiddenDim, dim],
            ],
          },
    );
    sources.set(layerTensor.w2(l), {
      names: [at('mlp.down_proj.weight')],
      shapes: [[dim, hiddenDim]],
    });
  }
  return sources;
}

/**
 * Checkpoint tensors no canonical tensor reads. A tied model's `lm_head.weight` is
 * allowed (transformers ties it to the embedding); anything else — a bias the config
 * does not declare, a layer beyond `num_hidden_layers` — is a mismatch.
 */
export function unreadTensors(
  present: Iterable<string>,
  sources: Map<string, HfTensorSource>,
  config: LlamaConfig,
): string[] {
  const read = new Set<string>();
  for (const source of sources.values()) for (const name of source.names) read.add(name);
  return [...present].filter(
    (name) =>
      !read.has(name) &&
      !IGNORED_TENSOR.test(name) &&
      !(config.sharedClassifier && name === 'lm_head.weight'),
  );
}
