/**
 * A layer's attention as onnxruntime's fused `com.microsoft.GroupQueryAttention`: one node
 * where the decomposed attention takes about twenty (transposes, reshapes, two score
 * matmuls, softmax, slices). The cache is the node's own: `past_key.L` and `present_key.L`
 * are the same [B, kvHeads, capacity, headDim] buffer when the engine binds them so
 * (onnxruntime then writes the new keys and values after each row's past, in place, and
 * copies nothing), and each row's length comes from `seqlens_k` (its last position), so
 * no attention bias is fed and causality and padding are the node's. Queries and keys are
 * rotated before it (`RotaryEmbedding` on the positions), as in the decomposed graph.
 */
import type { LlamaConfig } from '@swarmbee/core';
import type { DecoderBlocks, RopeCaches } from './decoder-blocks.js';
import { attr, type GraphBuilder } from './graph.js';
import { SHARD_IO } from './shard-io.js';

/** Graph inputs every fused layer of a shard shares. */
export interface FusedAttentionInputs {
  /** int32 [B]: each row's last position (past + new tokens − 1). */
  seqLensK: string;
  /** int32 scalar: the longest row's past + new tokens. */
  totalLength: string;
  /** [B, T, heads·hd] and [B, T, kvHeads·hd], from the positions' shape. */
  queryShape: string;
  kvShape: string;
}

/** Declares the shared inputs of a shard whose layers attend by {@link fusedAttention}. */
export function fusedAttentionInputs(
  g: GraphBuilder,
  btShape: (hint: string, tail: number[]) => string,
  config: LlamaConfig,
  hd: number,
): FusedAttentionInputs {
  return {
    seqLensK: g.input(SHARD_IO.seqLensK, 'int32', ['batch']),
    totalLength: g.input(SHARD_IO.totalSequenceLength, 'int32', []),
    queryShape: btShape('q3_shape', [config.nHeads * hd]),
    kvShape: btShape('kv3_shape', [config.nKvHeads * hd]),
  };
}

/**
 * Attention of layer `layer` over its cache and the new tokens; `q`, `k`, `v` are the
 * projections as [N, heads·hd] (N = B·T, q and k possibly normed as [N, heads, hd]).
 * Returns the context as [N, heads·hd], ready for the output projection.
 */
export function fusedAttention(
  blocks: DecoderBlocks,
  inputs: FusedAttentionInputs,
  layer: number,
  qkv: { q: string; k: string; v: string },
  rope: RopeCaches,
): string {
  const { g, config, hd } = blocks;
  const { nHeads, nKvHeads } = config;
  const query = g.op('Reshape', [blocks.rotary(qkv.q, nHeads, rope), inputs.queryShape]);
  const key = g.op('Reshape', [blocks.rotary(qkv.k, nKvHeads, rope), inputs.kvShape]);
  const value = g.op('Reshape', [qkv.v, inputs.kvShape]);
  const cacheDims = ['batch', nKvHeads, 'capacity', hd];
  const pastKey = g.input(SHARD_IO.pastKey(layer), 'float32', cacheDims);
  const pastValue = g.input(SHARD_IO.pastValue(layer), 'float32', cacheDims);
  const [context, presentKey, presentValue] = g.contribNode(
    'GroupQueryAttention',
    [query, key, value, pastKey, pastValue, inputs.seqLensK, inputs.totalLength],
    [g.fresh('attention'), SHARD_IO.presentKey(layer), SHARD_IO.presentValue(layer)],
    {
      num_heads: attr.int(nHeads),
      kv_num_heads: attr.int(nKvHeads),
      scale: attr.float(config.attentionScale ?? 1 / Math.sqrt(hd)),
    },
  ) as [string, string, string];
  g.output(presentKey, 'float32', cacheDims);
  g.output(presentValue, 'float32', cacheDims);
  return g.op('Reshape', [context, g.ints('ctx_rows', [-1, nHeads * hd])]);
}
