/**
 * Builds the ONNX graph of one pipeline stage of a decoder SwarmBee builds (Llama,
 * Mistral, Qwen2/3, Phi-3, Gemma 3): layers [layerStart, layerEnd), plus the token
 * embedding on the first stage and the final norm and LM head on the last. Weights
 * stay in external data. One builder for every family: the config picks the blocks
 * (see `decoder-blocks.ts`) — q/k/v bias, q/k norms, post-norms, activation,
 * embedding scale, attention scale, per-layer RoPE and sliding windows, logit soft-cap.
 *
 * Linear layers are Gemm with transB over a [tokens, dim] residual stream, so
 * weights keep their PyTorch [out, in] layout and each shard's weights are byte
 * ranges of the model's `weights.bin`. A quantized weight is onnxruntime's
 * `com.microsoft.MatMulNBits` instead, which multiplies by the dequantized
 * weight transposed — the same [out, in] orientation — so layers of any
 * precision mix in one graph. Grouped-query attention folds the query
 * heads of a KV group into one matmul instead of repeating keys and values.
 */
import { InvalidArgumentError, type KvDtype, type LlamaConfig, layerWindow } from '@swarmbee/core';
import type { LocatedWeight } from './decoder-blocks.js';
import { DecoderLayers, type ServedLora, type ShardAttention } from './decoder-layers.js';
import { GraphBuilder } from './graph.js';
import { SHARD_IO } from './shard-io.js';

export type { LocatedTensor, LocatedWeight } from './decoder-blocks.js';
export type { ServedLora, ShardAttention } from './decoder-layers.js';

export const SHARD_OPSET = 17;

export interface LlamaShardSpec {
  config: LlamaConfig;
  layerStart: number;
  layerEnd: number;
  /** Where each weight tensor's bytes are, by canonical tensor name. */
  locate: (tensor: string) => LocatedWeight;
  producer: string;
  /**
   * End with `hidden_out` even when the range reaches the last layer: no final norm, no
   * head. Calibration reads every layer's output this way; shards for serving never set it.
   */
  headless?: boolean;
  /**
   * Element type of the `past_*` inputs and `new_*` outputs. `float16` halves the cache: the
   * graph widens the past to fp32 for attention (a Cast per layer and step, over the past)
   * and rounds the new keys and values it returns. Default `float32`.
   */
  kvDtype?: KvDtype;
  /** Largest slice of an fp32 LM head multiplied at once, bytes. Default {@link HEAD_CHUNK_BYTES}. */
  headChunkBytes?: number;
  /**
   * `fused`: each layer attends by onnxruntime's GroupQueryAttention over a cache it writes in
   * place (see `fused-attention.ts`); only for fp32 KV and full-context layers.
   * `decomposed`: the attention spelled out in standard ops. Default `decomposed`.
   */
  attention?: ShardAttention;
  /**
   * LoRA adapters served unmerged (`adapter_ids` picks each row's): the located stacks of
   * every base tensor they change. Default: none (no `adapter_ids` input).
   */
  lora?: ServedLora;
}

/**
 * An fp32 LM head larger than this is multiplied in slices of rows: onnxruntime holds a Gemm
 * weight twice while loading it, so the slice bounds what loading adds to a stage's peak RSS.
 */
export const HEAD_CHUNK_BYTES = 64 * 2 ** 20;

export function buildLlamaShardGraph(spec: LlamaShardSpec): Uint8Array {
  const { config, layerStart, layerEnd } = spec;
  const isFirst = layerStart === 0;
  const isLast = layerEnd === config.nLayers && !spec.headless;
  const g = new GraphBuilder(`llama_layers_${layerStart}_${layerEnd}`);
  const kvDtype = spec.kvDtype ?? 'float32';
  const attention = spec.attention ?? 'decomposed';
  if (attention === 'fused') refuseFused(config, layerStart, layerEnd, kvDtype);
  const layers = new DecoderLayers(g, {
    config,
    layerStart,
    layerEnd,
    locate: spec.locate,
    kvDtype,
    attention,
    ...(spec.lora ? { lora: spec.lora } : {}),
  });
  let x = isFirst ? layers.embed() : layers.hiddenIn();
  for (let layer = layerStart; layer < layerEnd; layer++) {
    x = g.op('Add', [x, layers.attention(layer, x)], {}, 'residual');
    x = g.op('Add', [x, layers.feedForward(layer, x)], {}, 'residual');
  }
  const hidden3 = layers.hidden3(x, isLast ? 'hidden3' : SHARD_IO.hiddenOut);
  if (isLast) layers.logits(hidden3, spec.headChunkBytes ?? HEAD_CHUNK_BYTES);
  else g.output(hidden3, 'float32', ['batch', 'tokens', config.dim]);
  return g.encode({
    opset: SHARD_OPSET,
    producer: spec.producer,
    docString: `layers [${layerStart}, ${layerEnd}) of a ${config.nLayers}-layer decoder`,
  });
}

/** Fused attention reads an fp32 cache that keeps every position; anything else is refused. */
function refuseFused(config: LlamaConfig, layerStart: number, layerEnd: number, kvDtype: KvDtype) {
  if (kvDtype !== 'float32')
    throw new InvalidArgumentError(`fused attention takes a float32 KV cache, not ${kvDtype}`);
  for (let layer = layerStart; layer < layerEnd; layer++) {
    if (layerWindow(config, layer) !== undefined)
      throw new InvalidArgumentError(
        `fused attention keeps every position; layer ${layer} attends over a sliding window`,
      );
  }
}
