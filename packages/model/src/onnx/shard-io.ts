/**
 * The input/output contract of every shard graph. The engine fills these names;
 * the graph builder and the ONNX splitter produce them.
 *
 * Inputs (B = rows in the micro-batch, T = new tokens per row, P = past tokens):
 * - `input_ids` int64 [B, T] on the first stage, else `hidden_in` float32 [B, T, dim];
 * - `position_ids` int64 [B, T]: absolute position of each new token;
 * - `attention_bias` float32 [B, 1, T, P+T]: 0 where a token may attend, -1e30 elsewhere;
 *   only when the shard has a full-attention layer;
 * - `attention_bias_window` float32 [B, 1, T, W+T]: the same for sliding-window layers, whose
 *   past is a ring of W slots (slot = position mod W); only when the shard has such a layer;
 * - `past_key.L` / `past_value.L` float32 [B, kvHeads, P (W on windowed layers), headDim] for each layer L of the
 *   shard: head-major, so a single sequence's cache buffer (with room to grow) is fed as it
 *   lies; slots the bias masks may hold anything finite;
 * - on the last stage, `logit_index` int64 [B, R, 1]: which of the T positions get logits;
 * - `adapter_ids` int64 [B]: each row's adapter, 0 for the base; only on a shard built to serve
 *   LoRA adapters unmerged (see `lora/served-adapters.ts`).
 *
 * Outputs: `hidden_out` [B, T, dim] (or `logits` [B, R, vocab] on the last stage), and
 * `new_key.L` / `new_value.L` [B, kvHeads, T, headDim]: only the new tokens' keys and values.
 *
 * A shard built with fused attention (onnxruntime's GroupQueryAttention) differs: no
 * attention bias; `seqlens_k` int32 [B] (each row's last position) and
 * `total_sequence_length` int32 [] (the longest row's end) instead; `past_key.L` /
 * `past_value.L` are [B, kvHeads, C, headDim] with C the cache's capacity, and the outputs
 * `present_key.L` / `present_value.L` have that same shape: bound to the same buffers as the
 * past, they are the cache with the new rows written in place.
 */
import { type LlamaConfig, layerWindow } from '@swarmbee/core';

export const SHARD_IO = {
  inputIds: 'input_ids',
  hiddenIn: 'hidden_in',
  positionIds: 'position_ids',
  attentionBias: 'attention_bias',
  attentionBiasWindow: 'attention_bias_window',
  logitIndex: 'logit_index',
  /** Each row's served adapter, int64 [B] (0: the base); only on shards built with adapters. */
  adapterIds: 'adapter_ids',
  hiddenOut: 'hidden_out',
  logits: 'logits',
  /** A tensor-parallel member's segment output, [B, T, dim]: its share of what the residual adds. */
  partial: 'partial',
  pastKey: (layer: number) => `past_key.${layer}`,
  pastValue: (layer: number) => `past_value.${layer}`,
  newKey: (layer: number) => `new_key.${layer}`,
  newValue: (layer: number) => `new_value.${layer}`,
  seqLensK: 'seqlens_k',
  totalSequenceLength: 'total_sequence_length',
  presentKey: (layer: number) => `present_key.${layer}`,
  presentValue: (layer: number) => `present_value.${layer}`,
} as const;

/** Additive attention bias for positions a token must not see. Finite, so a fully masked padding row stays NaN-free. */
export const MASKED_BIAS = -1e30;

/** Which attention-bias inputs a shard of these layers takes: full layers', windowed layers', or both. */
export function shardBiasInputs(
  config: LlamaConfig,
  layerStart: number,
  layerEnd: number,
): { full: boolean; window: boolean } {
  let full = false;
  let window = false;
  for (let l = layerStart; l < layerEnd; l++) {
    if (layerWindow(config, l) === undefined) full = true;
    else window = true;
  }
  return { full, window };
}
