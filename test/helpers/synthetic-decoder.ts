/**
 * A small GPT-2-shaped decoder built the way Hugging Face Optimum exports one:
 * plain ONNX ops only (layer norms, attention and the causal mask spelled out),
 * explicit residual Adds, keys and values apart as `past_key_values.L.key/value`
 * -> `present.L.key/value`, int64 ids, a tied LM head, and a padding mask shaped
 * with the batch size read off `input_ids` (so a later stage must rebuild it from
 * the hidden state). Seeded random weights.
 */
import { attr, GraphBuilder } from '@swarmbee/model';
import type { DecoderNaming } from './gpt2-reference.js';

export interface SyntheticDecoderSpec {
  layers: number;
  dim: number;
  heads: number;
  vocab: number;
  positions: number;
  seed: number;
}

export const SYNTHETIC_DECODER: SyntheticDecoderSpec = {
  layers: 3,
  dim: 16,
  heads: 2,
  vocab: 64,
  positions: 64,
  seed: 7,
};

const NEG = -1e9;

export function buildSyntheticDecoder(spec: SyntheticDecoderSpec = SYNTHETIC_DECODER): Uint8Array {
  const { dim: C, heads: H, vocab: V, positions: P, layers } = spec;
  const D = C / H;
  let state = spec.seed >>> 0 || 1;
  const random = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return ((state >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
    });
  const g = new GraphBuilder('synthetic_decoder');
  const weight = (name: string, dims: number[], scale = 0.2) =>
    g.constant(
      name,
      'float32',
      dims,
      random(
        dims.reduce((a, b) => a * b, 1),
        scale,
      ),
    );
  const ones = (name: string) => g.constant(name, 'float32', [C], new Float32Array(C).fill(1));
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'total_length']);
  const positions = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const wte = weight('wte', [V, C], 0.5);
  let x = g.op('Add', [
    g.op('Gather', [wte, ids]),
    g.op('Gather', [weight('wpe', [P, C], 0.1), positions]),
  ]);

  // Padding bias [B, 1, 1, S], reshaped with the batch size of input_ids (a shape-only read).
  const batch = g.op('Slice', [g.op('Shape', [ids]), g.ints('zero', [0]), g.ints('one', [1])]);
  const biasShape = g.op('Concat', [batch, g.ints('bias_tail', [1, 1, -1])], { axis: attr.int(0) });
  const padBias = g.op('Reshape', [
    g.op('Mul', [
      g.op('Sub', [g.scalar('one_f', 1), g.op('Cast', [mask], { to: attr.int(1) })]),
      g.scalar('neg', NEG),
    ]),
    biasShape,
  ]);
  const eps = g.scalar('eps', 1e-5);
  const layerNorm = (input: string, gamma: string, beta: string) => {
    const centred = g.op('Sub', [
      input,
      g.op('ReduceMean', [input], { axes: attr.ints([-1]), keepdims: attr.int(1) }),
    ]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], {
      axes: attr.ints([-1]),
      keepdims: attr.int(1),
    });
    const normed = g.op('Div', [centred, g.op('Sqrt', [g.op('Add', [variance, eps])])]);
    return g.op('Add', [g.op('Mul', [normed, gamma]), beta]);
  };
  const toHeads = (t: string) =>
    g.op('Transpose', [g.op('Reshape', [t, g.ints('heads', [0, 0, H, D])])], {
      perm: attr.ints([0, 2, 1, 3]),
    });
  const scale = g.scalar('scale', Math.sqrt(D));
  const int0 = g.constant('int0', 'int64', [], BigInt64Array.of(0n));
  const int1 = g.constant('int1', 'int64', [], BigInt64Array.of(1n));
  for (let l = 0; l < layers; l++) {
    const h = layerNorm(x, ones(`ln1_g${l}`), weight(`ln1_b${l}`, [C], 0.05));
    const qkv = g.op('Add', [
      g.op('MatMul', [h, weight(`wqkv${l}`, [C, 3 * C])]),
      weight(`bqkv${l}`, [3 * C], 0.05),
    ]);
    const [q, k, v] = g.opN('Split', [qkv, g.ints('qkv_split', [C, C, C])], 3, {
      axis: attr.int(-1),
    }) as [string, string, string];
    const past = (part: string) =>
      g.input(`past_key_values.${l}.${part}`, 'float32', ['batch_size', H, 'past_length', D]);
    const keys = g.op(
      'Concat',
      [past('key'), toHeads(k)],
      { axis: attr.int(2) },
      `present.${l}.key`,
    );
    const values = g.op(
      'Concat',
      [past('value'), toHeads(v)],
      { axis: attr.int(2) },
      `present.${l}.value`,
    );
    g.output(keys, 'float32', ['batch_size', H, 'total_length', D]);
    g.output(values, 'float32', ['batch_size', H, 'total_length', D]);
    const queries = toHeads(q);
    // Causal mask relative to the past: query i may see key j when j <= past + i.
    const dimOf = (t: string, axis: number) =>
      g.op('Squeeze', [
        g.op('Gather', [g.op('Shape', [t]), g.ints(`axis${axis}`, [axis])]),
        g.ints('axis0', [0]),
      ]);
    const tokens = dimOf(queries, 2);
    const total = dimOf(keys, 2);
    const rows = g.op('Add', [
      g.op('Unsqueeze', [g.op('Range', [int0, tokens, int1]), g.ints('axis1', [1])]),
      g.op('Sub', [total, tokens]),
    ]);
    const cols = g.op('Range', [int0, total, int1]);
    const causal = g.op('Where', [
      g.op('LessOrEqual', [cols, rows]),
      g.scalar('zero_f', 0),
      g.scalar('neg_c', NEG),
    ]);
    const scores = g.op('Add', [
      g.op('Add', [
        g.op('Div', [
          g.op('MatMul', [queries, g.op('Transpose', [keys], { perm: attr.ints([0, 1, 3, 2]) })]),
          scale,
        ]),
        causal,
      ]),
      padBias,
    ]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.int(-1) }), values]);
    const merged = g.op('Reshape', [
      g.op('Transpose', [context], { perm: attr.ints([0, 2, 1, 3]) }),
      g.ints('merge', [0, 0, C]),
    ]);
    x = g.op('Add', [
      x,
      g.op('Add', [
        g.op('MatMul', [merged, weight(`wo${l}`, [C, C])]),
        weight(`bo${l}`, [C], 0.05),
      ]),
    ]);
    const f = layerNorm(x, ones(`ln2_g${l}`), weight(`ln2_b${l}`, [C], 0.05));
    const up = g.op('Tanh', [
      g.op('Add', [
        g.op('MatMul', [f, weight(`w1${l}`, [C, 4 * C])]),
        weight(`b1${l}`, [4 * C], 0.05),
      ]),
    ]);
    x = g.op('Add', [x, g.op('MatMul', [up, weight(`w2${l}`, [4 * C, C])])], {}, `residual${l}`);
  }
  const final = layerNorm(x, ones('lnf_g'), weight('lnf_b', [C], 0.05));
  const logits = g.op(
    'MatMul',
    [final, g.op('Transpose', [wte], { perm: attr.ints([1, 0]) })],
    {},
    'logits',
  );
  g.output(logits, 'float32', ['batch_size', 'sequence_length', V]);
  return g.encode({ opset: 17, producer: 'synthetic-optimum-style' });
}

/** How the synthetic decoder names its IO, for running it whole without SwarmBee. */
export const SYNTHETIC_NAMING: DecoderNaming = {
  past: Array.from({ length: SYNTHETIC_DECODER.layers }, (_, l) => [
    `past_key_values.${l}.key`,
    `past_key_values.${l}.value`,
  ]),
  present: Array.from({ length: SYNTHETIC_DECODER.layers }, (_, l) => [
    `present.${l}.key`,
    `present.${l}.value`,
  ]),
  kv: 'separate',
  kvHeads: SYNTHETIC_DECODER.heads,
  headDim: SYNTHETIC_DECODER.dim / SYNTHETIC_DECODER.heads,
  ids: 'int64',
  vocab: SYNTHETIC_DECODER.vocab,
};
