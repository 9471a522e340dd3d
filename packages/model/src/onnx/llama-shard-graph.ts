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
import {
  headDim,
  InvalidArgumentError,
  type KvDtype,
  type LlamaConfig,
  layerRope,
  layerWindow,
} from '@swarmbee/core';
import { CLASSIFIER, FINAL_NORM, layerTensor, TOKEN_EMBEDDING } from '../llama-tensors.js';
import { DecoderBlocks, type LocatedWeight, type RopeCaches } from './decoder-blocks.js';
import { fusedAttention, fusedAttentionInputs } from './fused-attention.js';
import { attr, DataType, GraphBuilder } from './graph.js';
import { SHARD_IO, shardBiasInputs } from './shard-io.js';

export type { LocatedTensor, LocatedWeight } from './decoder-blocks.js';

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
}

/** How a shard's layers attend: onnxruntime's fused GroupQueryAttention, or standard ops. */
export type ShardAttention = 'fused' | 'decomposed';

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
  const { dim, nHeads, nKvHeads } = config;
  const hd = headDim(config);
  const kvDim = nKvHeads * hd;
  const group = nHeads / nKvHeads;
  const kvDtype = spec.kvDtype ?? 'float32';

  const positions = g.input(SHARD_IO.positionIds, 'int64', ['batch', 'tokens']);
  const flatPositions = g.op('Reshape', [positions, g.ints('flat', [-1])], {}, 'flat_positions');
  const blocks = new DecoderBlocks(g, config, spec.locate, flatPositions);
  const fused = spec.attention === 'fused';
  if (fused) refuseFused(config, layerStart, layerEnd, kvDtype);
  const biasInputs = fused
    ? { full: false, window: false }
    : shardBiasInputs(config, layerStart, layerEnd);
  // Per layer kind, the additive bias tiled over the query heads of a KV group.
  const groupBias = (name: string, total: string) => {
    const bias = g.input(name, 'float32', ['batch', 1, 'tokens', total]);
    return group === 1
      ? bias
      : g.op('Tile', [bias, g.ints('bias_repeats', [1, 1, group, 1])], {}, 'group_bias');
  };
  const fullBias = biasInputs.full ? groupBias(SHARD_IO.attentionBias, 'total') : undefined;
  const windowBias = biasInputs.window
    ? groupBias(SHARD_IO.attentionBiasWindow, 'window_total')
    : undefined;

  let x: string;
  if (isFirst) {
    const ids = g.input(SHARD_IO.inputIds, 'int64', ['batch', 'tokens']);
    let embedded = g.op('Gather', [blocks.weight(TOKEN_EMBEDDING), ids], {}, 'embed');
    if (config.embeddingScale !== undefined)
      embedded = g.op('Mul', [embedded, g.scalar('embed_scale', config.embeddingScale)]);
    x = g.op('Reshape', [embedded, g.ints('rows_by_dim', [-1, dim])], {}, 'x');
  } else {
    const hidden = g.input(SHARD_IO.hiddenIn, 'float32', ['batch', 'tokens', dim]);
    x = g.op('Reshape', [hidden, g.ints('rows_by_dim', [-1, dim])], {}, 'x');
  }

  // Shapes shared by every layer: [B, T] from the positions.
  const bt = g.op('Shape', [positions], {}, 'batch_tokens');
  const btShape = (hint: string, tail: number[]) =>
    g.op('Concat', [bt, g.ints(`${hint}_tail`, tail)], { axis: attr.int(0) }, hint);
  const kv4Shape = btShape('kv4_shape', [nKvHeads, hd]);
  const q5Shape = btShape('q5_shape', [nKvHeads, group, hd]);
  const scoreScale =
    config.attentionScale === undefined
      ? { op: 'Div', value: g.scalar('attn_scale', Math.sqrt(hd)) }
      : { op: 'Mul', value: g.scalar('attn_scale', config.attentionScale) };

  const fusedInputs = fused ? fusedAttentionInputs(g, btShape, config, hd) : undefined;

  const pastLengths = new Map<'full' | 'window', string>();
  for (let layer = layerStart; layer < layerEnd; layer++) {
    const rope = blocks.ropeCaches(layerRope(config, layer));
    const h = blocks.rmsNorm(x, layerTensor.attnNorm(layer));
    const qkv = blocks.linear(
      h,
      layerTensor.wqkv(layer),
      config.qkvBias ? layerTensor.bqkv(layer) : undefined,
    );
    const [q, k, v] = g.opN('Split', [qkv, g.ints('qkv_split', [nHeads * hd, kvDim, kvDim])], 3, {
      axis: attr.int(1),
    }) as [string, string, string];
    let qHeads = q;
    let kHeads = k;
    if (config.qkNorm) {
      qHeads = blocks.rmsNorm(blocks.heads(q, nHeads), layerTensor.qNorm(layer));
      kHeads = blocks.rmsNorm(blocks.heads(k, nKvHeads), layerTensor.kNorm(layer));
    }
    const merged = fusedInputs
      ? fusedAttention(blocks, fusedInputs, layer, { q: qHeads, k: kHeads, v }, rope)
      : decomposed(layer, qHeads, kHeads, v, rope);
    let attended = blocks.linear(merged, layerTensor.wo(layer));
    if (config.postNorms) attended = blocks.rmsNorm(attended, layerTensor.attnPostNorm(layer));
    x = g.op('Add', [x, attended], {}, 'residual');

    const f = blocks.rmsNorm(x, layerTensor.ffnNorm(layer));
    let fed = blocks.feedForward(f, layerTensor.w13(layer), layerTensor.w2(layer));
    if (config.postNorms) fed = blocks.rmsNorm(fed, layerTensor.ffnPostNorm(layer));
    x = g.op('Add', [x, fed], {}, 'residual');
  }

  /** A layer's attention in standard ops, over the past fed as `past_*` and the bias. */
  function decomposed(
    layer: number,
    qHeads: string,
    kHeads: string,
    v: string,
    rope: RopeCaches,
  ): string {
    const bias = layerWindow(config, layer) === undefined ? fullBias! : windowBias!;
    // New keys and values, head-major [B, KV, T, hd]: the layout of the cache they join.
    const headMajor = (input: string, name: string) =>
      g.op(
        'Transpose',
        [g.op('Reshape', [input, kv4Shape])],
        { perm: attr.ints([0, 2, 1, 3]) },
        name,
      );
    // This step attends to its new keys and values in fp32; the cache keeps them as kvDtype.
    const cacheOut = (value: string, name: string) => {
      if (kvDtype === 'float32') return value;
      g.op('Cast', [value], { to: attr.int(DataType.float16) }, name);
      return value;
    };
    const newName = (name: string) => (kvDtype === 'float32' ? name : `${name}_fp32`);
    const newKey = cacheOut(
      headMajor(blocks.rotary(kHeads, nKvHeads, rope), newName(SHARD_IO.newKey(layer))),
      SHARD_IO.newKey(layer),
    );
    const newValue = cacheOut(
      headMajor(v, newName(SHARD_IO.newValue(layer))),
      SHARD_IO.newValue(layer),
    );
    g.output(SHARD_IO.newKey(layer), kvDtype, ['batch', nKvHeads, 'tokens', hd]);
    g.output(SHARD_IO.newValue(layer), kvDtype, ['batch', nKvHeads, 'tokens', hd]);
    const pastInput = (name: string) => {
      const input = g.input(name, kvDtype, ['batch', nKvHeads, 'past', hd]);
      return kvDtype === 'float32'
        ? input
        : g.op('Cast', [input], { to: attr.int(DataType.float32) }, `${name}_fp32`);
    };
    const pastKey = pastInput(SHARD_IO.pastKey(layer));
    const pastValue = pastInput(SHARD_IO.pastValue(layer));

    // Queries grouped by KV head: [B, KV, G*T, hd]. The cache is used where it lies: scores
    // against it are (K · Qᵀ)ᵀ, so only the small [P, G*T] result is transposed, and the
    // new tokens are a second, small block of the same softmax. No step copies the cache.
    const q5 = g.op('Reshape', [blocks.rotary(qHeads, nHeads, rope), q5Shape]);
    const queries = g.op('Reshape', [
      g.op('Transpose', [q5], { perm: attr.ints([0, 2, 3, 1, 4]) }),
      g.ints('q_grouped', [0, nKvHeads, -1, hd]),
    ]);
    const queriesT = g.op('Transpose', [queries], { perm: attr.ints([0, 1, 3, 2]) });
    const pastScores = g.op('Transpose', [g.op('MatMul', [pastKey, queriesT])], {
      perm: attr.ints([0, 1, 3, 2]),
    });
    const newScores = g.op('MatMul', [
      queries,
      g.op('Transpose', [newKey], { perm: attr.ints([0, 1, 3, 2]) }),
    ]);
    const scores = g.op('Add', [
      g.op(scoreScale.op, [
        g.op('Concat', [pastScores, newScores], { axis: attr.int(-1) }),
        scoreScale.value,
      ]),
      bias,
    ]);
    const probs = g.op('Softmax', [scores], { axis: attr.int(-1) });
    // Every layer of a kind holds the same past length (the arena's capacity, or the ring's
    // window): read it off the first such layer's input once.
    const kind = layerWindow(config, layer) === undefined ? 'full' : 'window';
    let pastLength = pastLengths.get(kind);
    if (pastLength === undefined) {
      pastLength = g.op('Gather', [g.op('Shape', [pastKey]), g.ints('past_axis', [2])], {
        axis: attr.int(0),
      });
      pastLengths.set(kind, pastLength);
    }
    const lastAxis = g.ints('last_axis', [-1]);
    const pastProbs = g.op('Slice', [probs, g.ints('zero', [0]), pastLength, lastAxis]);
    const newProbs = g.op('Slice', [probs, pastLength, g.ints('to_end', [2 ** 31 - 1]), lastAxis]);
    const context = g.op('Add', [
      g.op('MatMul', [pastProbs, pastValue]),
      g.op('MatMul', [newProbs, newValue]),
    ]);
    const context5 = g.op('Reshape', [context, g.ints('ctx5', [0, nKvHeads, group, -1, hd])]);
    return g.op('Reshape', [
      g.op('Transpose', [context5], { perm: attr.ints([0, 3, 1, 2, 4]) }),
      g.ints('ctx_rows', [-1, nHeads * hd]),
    ]);
  }

  const hidden3 = g.op(
    'Reshape',
    [x, btShape('hidden_shape', [dim])],
    {},
    isLast ? 'hidden3' : SHARD_IO.hiddenOut,
  );
  if (!isLast) {
    g.output(hidden3, 'float32', ['batch', 'tokens', dim]);
  } else {
    const index = g.input(SHARD_IO.logitIndex, 'int64', ['batch', 'rows', 1]);
    const picked = g.op('GatherND', [hidden3, index], { batch_dims: attr.int(1) }, 'picked');
    const rows = g.op('Reshape', [picked, g.ints('rows_by_dim', [-1, dim])]);
    const head = config.sharedClassifier ? TOKEN_EMBEDDING : CLASSIFIER;
    let logits2d = blocks.head(
      blocks.rmsNorm(rows, FINAL_NORM),
      head,
      spec.headChunkBytes ?? HEAD_CHUNK_BYTES,
    );
    if (config.finalLogitSoftcap !== undefined)
      logits2d = blocks.softcap(logits2d, config.finalLogitSoftcap);
    const logitsShape = g.op(
      'Concat',
      [g.op('Shape', [index], { end: attr.int(2) }), g.ints('vocab', [config.vocabSize])],
      { axis: attr.int(0) },
    );
    const logits = g.op('Reshape', [logits2d, logitsShape], {}, SHARD_IO.logits);
    g.output(logits, 'float32', ['batch', 'rows', config.vocabSize]);
  }
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
