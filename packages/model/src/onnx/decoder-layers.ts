/**
 * A decoder layer's two halves as graph fragments — attention (norm → q/k/v → RoPE →
 * attention over the cache → output projection) and feed-forward (norm → gated MLP) —
 * plus the token embedding and the LM head. `buildLlamaShardGraph` strings them into a
 * stage with the residual adds between; a tensor-parallel member's segment graphs
 * (`tensor-slice-graph.ts`) build each half alone over its slice of the heads and columns,
 * the config then counting only the member's heads and columns.
 */
import { headDim, type KvDtype, type LlamaConfig, layerRope, layerWindow } from '@swarmbee/core';
import { CLASSIFIER, FINAL_NORM, layerTensor, TOKEN_EMBEDDING } from '../llama-tensors.js';
import {
  DecoderBlocks,
  type LocatedWeight,
  type RopeCaches,
  type ServedLoraGraph,
} from './decoder-blocks.js';
import {
  type FusedAttentionInputs,
  fusedAttention,
  fusedAttentionInputs,
} from './fused-attention.js';
import { attr, DataType, type GraphBuilder } from './graph.js';
import { SHARD_IO, shardBiasInputs } from './shard-io.js';

/** How a shard's layers attend: onnxruntime's fused GroupQueryAttention, or standard ops. */
export type ShardAttention = 'fused' | 'decomposed';

export interface DecoderLayersSpec {
  config: LlamaConfig;
  /** The layers whose attention this graph holds (for the bias inputs it needs). */
  layerStart: number;
  layerEnd: number;
  locate: (tensor: string) => LocatedWeight;
  kvDtype: KvDtype;
  attention: ShardAttention;
  /** LoRA adapters served unmerged: the stacks of each base tensor they change. Default: none. */
  lora?: ServedLora;
}

/** Adapters a shard serves unmerged, chosen per row by `adapter_ids`. */
export type ServedLora = Pick<ServedLoraGraph, 'stack'>;

/** Shapes every layer's attention shares: [B, T, …] from the positions. */
interface AttentionShapes {
  btShape: (hint: string, tail: number[]) => string;
  kv4Shape: string;
  q5Shape: string;
  scoreScale: { op: string; value: string };
  fused?: FusedAttentionInputs;
}

export class DecoderLayers {
  readonly blocks: DecoderBlocks;
  readonly positions: string;
  readonly #spec: DecoderLayersSpec;
  readonly #fullBias: string | undefined;
  readonly #windowBias: string | undefined;
  readonly #pastLengths = new Map<'full' | 'window', string>();
  #shapes: AttentionShapes | undefined;

  /** Declares the positions and attention-bias inputs. */
  constructor(
    readonly g: GraphBuilder,
    spec: DecoderLayersSpec,
  ) {
    this.#spec = spec;
    const { config } = spec;
    this.positions = g.input(SHARD_IO.positionIds, 'int64', ['batch', 'tokens']);
    const flatPositions = g.op(
      'Reshape',
      [this.positions, g.ints('flat', [-1])],
      {},
      'flat_positions',
    );
    const lora = spec.lora && {
      ids: g.input(SHARD_IO.adapterIds, 'int64', ['batch']),
      stack: spec.lora.stack,
    };
    this.blocks = new DecoderBlocks(g, config, spec.locate, flatPositions, lora);
    const group = config.nHeads / config.nKvHeads;
    const biasInputs =
      spec.attention === 'fused'
        ? { full: false, window: false }
        : shardBiasInputs(config, spec.layerStart, spec.layerEnd);
    // Per layer kind, the additive bias tiled over the query heads of a KV group.
    const groupBias = (name: string, total: string) => {
      const bias = g.input(name, 'float32', ['batch', 1, 'tokens', total]);
      return group === 1
        ? bias
        : g.op('Tile', [bias, g.ints('bias_repeats', [1, 1, group, 1])], {}, 'group_bias');
    };
    this.#fullBias = biasInputs.full ? groupBias(SHARD_IO.attentionBias, 'total') : undefined;
    this.#windowBias = biasInputs.window
      ? groupBias(SHARD_IO.attentionBiasWindow, 'window_total')
      : undefined;
  }

  /** The token embedding of `input_ids` as [B·T, dim] rows. */
  embed(): string {
    const { g, blocks } = this;
    const { config } = this.#spec;
    const ids = g.input(SHARD_IO.inputIds, 'int64', ['batch', 'tokens']);
    let embedded = g.op('Gather', [blocks.weight(TOKEN_EMBEDDING), ids], {}, 'embed');
    if (config.embeddingScale !== undefined)
      embedded = g.op('Mul', [embedded, g.scalar('embed_scale', config.embeddingScale)]);
    return g.op('Reshape', [embedded, g.ints('rows_by_dim', [-1, config.dim])], {}, 'x');
  }

  /** `hidden_in` [B, T, dim] as [B·T, dim] rows. */
  hiddenIn(): string {
    const { g } = this;
    const { dim } = this.#spec.config;
    const hidden = g.input(SHARD_IO.hiddenIn, 'float32', ['batch', 'tokens', dim]);
    return g.op('Reshape', [hidden, g.ints('rows_by_dim', [-1, dim])], {}, 'x');
  }

  /** [B·T, dim] rows back to [B, T, dim], named `name`. */
  hidden3(x: string, name: string): string {
    const { dim } = this.#spec.config;
    return this.g.op(
      'Reshape',
      [x, this.#attentionShapes().btShape('hidden_shape', [dim])],
      {},
      name,
    );
  }

  /**
   * Layer `layer`'s attention block over rows `x` [B·T, dim]: what the residual adds (after
   * the post-norm when the family has one). Declares the layer's cache inputs and outputs.
   */
  attention(layer: number, x: string): string {
    const { g, blocks } = this;
    const { config } = this.#spec;
    const { nHeads, nKvHeads } = config;
    const hd = headDim(config);
    const kvDim = nKvHeads * hd;
    const shapes = this.#attentionShapes();
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
    const merged = shapes.fused
      ? fusedAttention(blocks, shapes.fused, layer, { q: qHeads, k: kHeads, v }, rope)
      : this.#decomposed(layer, qHeads, kHeads, v, rope);
    const attended = blocks.linear(merged, layerTensor.wo(layer));
    return config.postNorms ? blocks.rmsNorm(attended, layerTensor.attnPostNorm(layer)) : attended;
  }

  /** Layer `layer`'s feed-forward block over rows `x`: what the residual adds. */
  feedForward(layer: number, x: string): string {
    const { blocks } = this;
    const f = blocks.rmsNorm(x, layerTensor.ffnNorm(layer));
    const fed = blocks.feedForward(f, layerTensor.w13(layer), layerTensor.w2(layer));
    return this.#spec.config.postNorms ? blocks.rmsNorm(fed, layerTensor.ffnPostNorm(layer)) : fed;
  }

  /**
   * The final norm and LM head over [B, T, dim] `hidden3`, at the positions `logit_index`
   * picks: declares that input and the `logits` output [B, R, vocab].
   */
  logits(hidden3: string, headChunkBytes: number): void {
    const { g, blocks } = this;
    const { config } = this.#spec;
    const index = g.input(SHARD_IO.logitIndex, 'int64', ['batch', 'rows', 1]);
    const picked = g.op('GatherND', [hidden3, index], { batch_dims: attr.int(1) }, 'picked');
    const rows = g.op('Reshape', [picked, g.ints('rows_by_dim', [-1, config.dim])]);
    const head = config.sharedClassifier ? TOKEN_EMBEDDING : CLASSIFIER;
    let logits2d = blocks.head(blocks.rmsNorm(rows, FINAL_NORM), head, headChunkBytes);
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

  /** Shapes shared by every layer, declared once, on first use. */
  #attentionShapes(): AttentionShapes {
    if (this.#shapes) return this.#shapes;
    const { g } = this;
    const { config } = this.#spec;
    const hd = headDim(config);
    const group = config.nHeads / config.nKvHeads;
    const bt = g.op('Shape', [this.positions], {}, 'batch_tokens');
    const btShape = (hint: string, tail: number[]) =>
      g.op('Concat', [bt, g.ints(`${hint}_tail`, tail)], { axis: attr.int(0) }, hint);
    const kv4Shape = btShape('kv4_shape', [config.nKvHeads, hd]);
    const q5Shape = btShape('q5_shape', [config.nKvHeads, group, hd]);
    const scoreScale =
      config.attentionScale === undefined
        ? { op: 'Div', value: g.scalar('attn_scale', Math.sqrt(hd)) }
        : { op: 'Mul', value: g.scalar('attn_scale', config.attentionScale) };
    this.#shapes = { btShape, kv4Shape, q5Shape, scoreScale };
    if (this.#spec.attention === 'fused')
      this.#shapes.fused = fusedAttentionInputs(g, btShape, config, hd);
    return this.#shapes;
  }

  /** A layer's attention in standard ops, over the past fed as `past_*` and the bias. */
  #decomposed(layer: number, qHeads: string, kHeads: string, v: string, rope: RopeCaches): string {
    const { g, blocks } = this;
    const { config, kvDtype } = this.#spec;
    const { nHeads, nKvHeads } = config;
    const hd = headDim(config);
    const { kv4Shape, q5Shape, scoreScale } = this.#attentionShapes();
    const bias = layerWindow(config, layer) === undefined ? this.#fullBias! : this.#windowBias!;
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
    let pastLength = this.#pastLengths.get(kind);
    if (pastLength === undefined) {
      pastLength = g.op('Gather', [g.op('Shape', [pastKey]), g.ints('past_axis', [2])], {
        axis: attr.int(0),
      });
      this.#pastLengths.set(kind, pastLength);
    }
    const lastAxis = g.ints('last_axis', [-1]);
    const pastProbs = g.op('Slice', [probs, g.ints('zero', [0]), pastLength, lastAxis]);
    const newProbs = g.op('Slice', [probs, pastLength, g.ints('to_end', [2 ** 31 - 1]), lastAxis]);
    const context = g.op('Add', [
      g.op('MatMul', [pastProbs, pastValue]),
      g.op('MatMul', [newProbs, newValue]),
    ]);
    const context5 = g.op('Reshape', [
      context,
      g.ints('ctx5', [0, nKvHeads, group(config), -1, hd]),
    ]);
    return g.op('Reshape', [
      g.op('Transpose', [context5], { perm: attr.ints([0, 3, 1, 2, 4]) }),
      g.ints('ctx_rows', [-1, nHeads * hd]),
    ]);
  }
}

function group(config: LlamaConfig): number {
  return config.nHeads / config.nKvHeads;
}
