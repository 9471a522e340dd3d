/**
 * Attention biases an export derives from the attention mask, rebuilt by SwarmBee.
 *
 * onnxruntime-genai's model builder turns the 0/1 mask into an additive bias
 * `[B, 1, T, P+T]` for `com.microsoft.MultiHeadAttention`: the mask's part broadcast
 * over the new tokens, plus a causal part built as a T × T triangle and expanded to
 * `[B, 1, T, P+T]`. That expand only succeeds when the past P is empty (a prompt) or
 * T is 1 (a decode step) — the builder's own runtime never feeds anything else —
 * while SwarmBee feeds a past as wide as the cache's capacity with every prompt and
 * prefills long prompts in chunks: onnxruntime fails with "invalid expand shape".
 * Every stage therefore computes the bias itself, for any P and T, from the two
 * inputs it always has: slot s is visible to new token t when the mask is 1 there
 * and s ≤ P + t. Where the builder's graph works (P = 0 or T = 1) the two agree.
 */
import {
  type DecoderFloatDtype,
  type OnnxAttentionBias,
  type OnnxDecoderLayout,
  OnnxGraphUnsupportedError,
} from '@swarmbee/core';
import type { DecoderIo } from './decoder-io.js';
import { type GraphIndex, valueSources } from './graph-index.js';
import { MS_DOMAIN, type NodeProto, onnx, type TensorProto } from './proto.js';

const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/** `com.microsoft.MultiHeadAttention`'s input slot of the additive bias. */
const MHA_ATTENTION_BIAS_INPUT = 5;
/** Lowest finite values: what the builder fills masked slots with (fp16 -65504). */
const LOWEST_FLOAT16_BITS = 0xfbff;
const LOWEST_FLOAT32 = -3.4028234663852886e38;

/**
 * The biases the attention ops read that depend on the attention mask and nothing
 * else but shapes. A bias computed from token ids or the cache's values cannot be
 * rebuilt and is refused, naming the node.
 */
export function findAttentionBiases(
  index: GraphIndex,
  io: DecoderIo,
  types: Map<string, number>,
): OnnxAttentionBias[] {
  const MASK = 1n;
  const sources = new Map<string, bigint>([
    [io.attentionMask.name, MASK],
    [io.inputIds.name, 2n],
    [io.positionIds.name, 4n],
  ]);
  for (const names of io.kv.past) for (const name of names) sources.set(name, 8n);
  const masks = valueSources(index, sources);
  const found = new Map<string, OnnxAttentionBias>();
  for (const node of index.nodes) {
    if (node.opType !== 'MultiHeadAttention' || node.domain !== MS_DOMAIN) continue;
    const tensor = node.input?.[MHA_ATTENTION_BIAS_INPUT];
    if (!tensor || found.has(tensor)) continue;
    const producer = index.producer.get(tensor);
    const reads = producer === undefined ? (sources.get(tensor) ?? 0n) : masks[producer]!;
    const type = types.get(tensor);
    const dtype: DecoderFloatDtype | undefined =
      type === DataType.FLOAT16 ? 'float16' : type === DataType.FLOAT ? 'float32' : undefined;
    if (reads !== MASK || producer === undefined || !dtype) {
      throw new OnnxGraphUnsupportedError(
        `node ${node.name || node.opType} (MultiHeadAttention) reads the attention bias ${tensor}, which ` +
          (dtype
            ? 'is not computed from the attention mask alone'
            : `has element type ${type ?? 'unknown'}, not float16 or float32`) +
          '; SwarmBee rebuilds a mask-derived bias for its cache layout and can feed no other',
      );
    }
    found.set(tensor, { tensor, dtype });
  }
  return [...found.values()];
}

/** Makes fresh names and small initializers for the nodes the surgery adds. */
export interface ExtraValueSource {
  name(hint: string): string;
  /** A 0-d (ints of length 1 and `scalar`) or 1-d int64 initializer; returns its name. */
  ints(hint: string, values: number[], scalar?: boolean): string;
  tensor(hint: string, tensor: Omit<TensorProto, 'name'>): string;
}

/** The nodes computing `bias.tensor` from the attention mask and the position ids' shape. */
export function attentionBiasNodes(
  bias: OnnxAttentionBias,
  layout: OnnxDecoderLayout,
  extra: ExtraValueSource,
): NodeProto[] {
  if (layout.opset < 13)
    throw new OnnxGraphUnsupportedError(
      `rebuilding the attention bias ${bias.tensor} needs opset 13 or later (the graph imports ${layout.opset})`,
    );
  const nodes: NodeProto[] = [];
  const op = (
    opType: string,
    input: string[],
    hint: string,
    attribute?: NodeProto['attribute'],
  ) => {
    const out = extra.name(hint);
    nodes.push({ opType, input, output: [out], name: out, ...(attribute ? { attribute } : {}) });
    return out;
  };
  const one = extra.ints('one', [1], true);
  const axis1 = extra.ints('axis_1', [1]);
  // total = P + T slots (the mask's width); T new tokens (the positions' width).
  const total = op(
    'Gather',
    [op('Shape', [layout.attentionMask.name], 'mask_shape'), one],
    'total_width',
  );
  const width = op(
    'Gather',
    [op('Shape', [layout.positionIds.name], 'positions_shape'), one],
    'new_width',
  );
  const past = op('Sub', [total, width], 'past_width');
  const slots = op('Range', [extra.ints('zero', [0], true), total, one], 'slots');
  // The slot each new token occupies, as a column: [T, 1].
  const own = op('Unsqueeze', [op('Range', [past, total, one], 'own_slots'), axis1], 'own_column');
  const causal = op('Not', [op('Greater', [slots, own], 'after_token')], 'causal');
  const visible = op(
    'Unsqueeze',
    [
      op('Cast', [layout.attentionMask.name], 'mask_bool', [
        { name: 'to', type: AttributeType.INT, i: DataType.BOOL },
      ]),
      extra.ints('axes_1_2', [1, 2]),
    ],
    'mask_4d',
  );
  const allowed = op('And', [causal, visible], 'allowed');
  const half = bias.dtype === 'float16';
  const scalar = (value: number) =>
    extra.tensor(value === 0 ? 'bias_zero' : 'bias_lowest', {
      dataType: half ? DataType.FLOAT16 : DataType.FLOAT,
      dims: [],
      rawData: half
        ? new Uint8Array(Uint16Array.of(value === 0 ? 0 : LOWEST_FLOAT16_BITS).buffer)
        : new Uint8Array(Float32Array.of(value).buffer),
    });
  nodes.push({
    opType: 'Where',
    input: [allowed, scalar(0), scalar(LOWEST_FLOAT32)],
    output: [bias.tensor],
    name: `${bias.tensor}_rebuilt`,
  });
  return nodes;
}
