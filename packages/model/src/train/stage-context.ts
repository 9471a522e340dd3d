/**
 * What every layer of one training graph shares: the model's shape, the frozen weights,
 * the adapter inputs, RoPE rows for the batch's positions, the grouped-query attention
 * bias, and the reshapes between the [N, features] residual stream and head-major
 * attention layouts.
 */
import { headDim, type LlamaConfig, layerRope } from '@swarmbee/core';
import type { LoraModule, LoraTarget } from '../lora/lora-spec.js';
import { ropeTables } from '../onnx/rope.js';
import type { FrozenWeights } from './frozen-weights.js';
import type { TrainGraph } from './train-graph.js';
import { TRAIN_IO } from './train-io.js';

export interface StageContext {
  tg: TrainGraph;
  config: LlamaConfig;
  weights: FrozenWeights;
  /** The adapted module of a layer's projection, if any. */
  module(layer: number, target: LoraTarget): LoraModule | undefined;
  /** The graph value of an adapter tensor (a graph input). */
  param(tensor: string): string;
  /** RoPE cos and sin rows [N, 1, hd/2] for the batch's positions, and -sin (the inverse rotation). */
  cos: string;
  sin: string;
  negSin: string;
  /** Attention bias tiled over the query heads of a KV group: [B, 1, G·T, T]. */
  groupBias: string;
  /** [B, T] of the batch, as an int64 shape. */
  batchTokens: string;
  normEps: string;
  /** Reshapes [N, heads·hd] queries to [B, KV, G·T, hd] and back. */
  toGrouped(q: string): string;
  fromGrouped(q: string): string;
  /** Reshapes [N, KV·hd] keys or values to [B, KV, T, hd] and back. */
  toKvHeads(x: string): string;
  fromKvHeads(x: string): string;
  /** [N, dim] to the stage's [B, T, dim] output layout. */
  toHidden3(x: string): string;
}

export function stageContext(
  tg: TrainGraph,
  config: LlamaConfig,
  weights: FrozenWeights,
  modules: readonly LoraModule[],
  param: (tensor: string) => string,
): StageContext {
  const { nHeads, nKvHeads, dim } = config;
  const hd = headDim(config);
  const group = nHeads / nKvHeads;
  const positions = tg.g.input(TRAIN_IO.positionIds, 'int64', ['batch', 'tokens']);
  const bias = tg.input(TRAIN_IO.attentionBias, ['batch', 1, 'tokens', 'tokens']);
  const batchTokens = tg.op('Shape', [positions]);
  const shape = (tail: number[]) => tg.concat([batchTokens, tg.ints(tail)], 0);
  const q5 = shape([nKvHeads, group, hd]);
  const kv4 = shape([nKvHeads, hd]);
  const hidden3 = shape([dim]);

  // Every layer rotates alike: checkTrainable refuses per-layer RoPE (sliding-window layers).
  const tables = ropeTables(config, layerRope(config, 0));
  const half = [config.maxSeqLen, hd / 2];
  const flat = tg.reshape(positions, [-1]);
  const rows = (table: string) =>
    tg.op('Unsqueeze', [tg.op('Gather', [table, flat]), tg.ints([1])]);
  const cos = rows(tg.table('rope_cos', half, tables.cos));
  const sin = rows(tg.table('rope_sin', half, tables.sin));

  const byKey = new Map(modules.map((m) => [`${m.layer}/${m.target}`, m]));
  return {
    tg,
    config,
    weights,
    module: (layer, target) => byKey.get(`${layer}/${target}`),
    param,
    cos,
    sin,
    negSin: tg.op('Neg', [sin]),
    groupBias: group === 1 ? bias : tg.op('Tile', [bias, tg.ints([1, 1, group, 1])]),
    batchTokens,
    normEps: tg.scalar(config.normEps),
    toGrouped: (q) =>
      tg.reshape(tg.transpose(tg.reshape(q, q5), [0, 2, 3, 1, 4]), [0, nKvHeads, -1, hd]),
    fromGrouped: (q) =>
      tg.reshape(tg.transpose(tg.reshape(q, [0, nKvHeads, group, -1, hd]), [0, 3, 1, 2, 4]), [
        -1,
        nHeads * hd,
      ]),
    toKvHeads: (x) => tg.transpose(tg.reshape(x, kv4), [0, 2, 1, 3]),
    fromKvHeads: (x) => tg.reshape(tg.transpose(x, [0, 2, 1, 3]), [-1, nKvHeads * hd]),
    toHidden3: (x) => tg.reshape(x, hidden3),
  };
}

/**
 * Rotate-half RoPE on [N, heads·hd]: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
 * With `inverse` it rotates back (sin negated), which is also its backward pass: the
 * gradient of a rotation is the opposite rotation of the gradient.
 */
export function rope(ctx: StageContext, x: string, heads: number, inverse = false): string {
  const { tg } = ctx;
  const hd = headDim(ctx.config);
  const sin = inverse ? ctx.negSin : ctx.sin;
  const [x1, x2] = tg.split(tg.reshape(x, [-1, heads, hd]), [hd / 2, hd / 2], 2) as [
    string,
    string,
  ];
  const first = tg.sub(tg.mul(x1, ctx.cos), tg.mul(x2, sin));
  const second = tg.add(tg.mul(x2, ctx.cos), tg.mul(x1, sin));
  return tg.reshape(tg.concat([first, second], 2), [-1, heads * hd]);
}

/** Values one layer's forward pass keeps for its backward pass, by key. */
export type Saved = Map<string, SavedValue>;

export interface SavedValue {
  value: string;
  /** Symbolic dims, for declaring the value as a graph output and input when stashed. */
  dims: (number | string)[];
}
