/**
 * Builds the ONNX graph of one pipeline stage of a Llama-family model: layers
 * [layerStart, layerEnd), plus the token embedding on the first stage and the
 * final norm and LM head on the last. Weights stay in external data.
 *
 * Linear layers are Gemm with transB over a [tokens, dim] residual stream, so
 * weights keep their PyTorch [out, in] layout and each shard's weights are byte
 * ranges of the model's `weights.bin`. A quantized weight is onnxruntime's
 * `com.microsoft.MatMulNBits` instead, which multiplies by the dequantized
 * weight transposed — the same [out, in] orientation — so layers of any
 * precision mix in one graph. Grouped-query attention folds the query
 * heads of a KV group into one matmul instead of repeating keys and values.
 */
import { headDim, type LlamaConfig, type WeightQuantization } from '@swarmbee/core';
import { CLASSIFIER, FINAL_NORM, layerTensor, TOKEN_EMBEDDING } from '../llama-tensors.js';
import { attr, type ExternalLocation, GraphBuilder } from './graph.js';
import { ropeTables } from './rope.js';
import { SHARD_IO } from './shard-io.js';

export const SHARD_OPSET = 17;

/**
 * A tensor's bytes: in external data (`where`, how model dirs and written shards keep
 * them), or given inline (`data`, for model variants built in memory). Exactly one.
 */
export interface LocatedTensor {
  dims: number[];
  where?: ExternalLocation;
  data?: Float32Array | Uint8Array;
}

/** A weight as the builder needs it: fp32, or quantized codes with their scales and zero points. */
export interface LocatedWeight extends LocatedTensor {
  quantization?: Pick<WeightQuantization, 'bits' | 'blockSize' | 'shape' | 'activations'> & {
    scales: LocatedTensor;
    zeroPoints: LocatedTensor;
  };
}

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
}

/** onnxruntime's MatMulNBits `accuracy_level` for each way of treating activations. */
const ACCURACY_LEVEL: Record<WeightQuantization['activations'], number> = {
  float32: 0,
  int8: 4,
};

function initializer(
  g: GraphBuilder,
  name: string,
  dtype: 'float32' | 'uint8',
  tensor: LocatedTensor,
): string {
  if (tensor.where && !tensor.data) return g.external(name, dtype, tensor.dims, tensor.where);
  if (tensor.data && !tensor.where) return g.constant(name, dtype, tensor.dims, tensor.data);
  throw new Error(`internal: tensor ${name} must be located by exactly one of where or data`);
}

export function buildLlamaShardGraph(spec: LlamaShardSpec): Uint8Array {
  const { config, layerStart, layerEnd } = spec;
  const isFirst = layerStart === 0;
  const isLast = layerEnd === config.nLayers && !spec.headless;
  const g = new GraphBuilder(`llama_layers_${layerStart}_${layerEnd}`);
  const weights = new Map<string, string>();
  const weight = (name: string) => {
    let value = weights.get(name);
    if (value === undefined) {
      const located = spec.locate(name);
      if (located.quantization) {
        throw new Error(
          `internal: ${name} is quantized; only linear layers take quantized weights`,
        );
      }
      value = initializer(g, name, 'float32', located);
      weights.set(name, value);
    }
    return value;
  };
  const { dim, nHeads, nKvHeads } = config;
  const hd = headDim(config);
  const kvDim = nKvHeads * hd;
  const group = nHeads / nKvHeads;

  const positions = g.input(SHARD_IO.positionIds, 'int64', ['batch', 'tokens']);
  const bias = g.input(SHARD_IO.attentionBias, 'float32', ['batch', 1, 'tokens', 'total']);
  let x: string;
  if (isFirst) {
    const ids = g.input(SHARD_IO.inputIds, 'int64', ['batch', 'tokens']);
    const embedded = g.op('Gather', [weight(TOKEN_EMBEDDING), ids], {}, 'embed');
    x = g.op('Reshape', [embedded, g.ints('rows_by_dim', [-1, dim])], {}, 'x');
  } else {
    const hidden = g.input(SHARD_IO.hiddenIn, 'float32', ['batch', 'tokens', dim]);
    x = g.op('Reshape', [hidden, g.ints('rows_by_dim', [-1, dim])], {}, 'x');
  }

  // Shapes shared by every layer: [B, T] from the positions, and RoPE rows per token.
  const bt = g.op('Shape', [positions], {}, 'batch_tokens');
  const btShape = (hint: string, tail: number[]) =>
    g.op('Concat', [bt, g.ints(`${hint}_tail`, tail)], { axis: attr.int(0) }, hint);
  const kv4Shape = btShape('kv4_shape', [nKvHeads, hd]);
  const q5Shape = btShape('q5_shape', [nKvHeads, group, hd]);
  const flatPositions = g.op('Reshape', [positions, g.ints('flat', [-1])], {}, 'flat_positions');
  const tables = ropeTables(config);
  const halfDims = [config.maxSeqLen, hd / 2];
  const unsqueezeAxis = g.ints('axis1', [1]);
  const cos = g.op(
    'Unsqueeze',
    [
      g.op('Gather', [g.constant('rope_cos', 'float32', halfDims, tables.cos), flatPositions]),
      unsqueezeAxis,
    ],
    {},
    'cos',
  );
  const sin = g.op(
    'Unsqueeze',
    [
      g.op('Gather', [g.constant('rope_sin', 'float32', halfDims, tables.sin), flatPositions]),
      unsqueezeAxis,
    ],
    {},
    'sin',
  );
  const groupBias =
    group === 1
      ? bias
      : g.op('Tile', [bias, g.ints('bias_repeats', [1, 1, group, 1])], {}, 'group_bias');
  const eps = g.scalar('norm_eps', config.normEps);
  const two = g.scalar('two', 2);
  const scale = g.scalar('attn_scale', Math.sqrt(hd));

  const rmsNorm = (input: string, weightName: string) => {
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [input, two])], {
      axes: attr.ints([-1]),
      keepdims: attr.int(1),
    });
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, eps])]);
    return g.op('Mul', [g.op('Div', [input, rms]), weight(weightName)], {}, 'normed');
  };
  // Gemm's optional C input carries a bias (Qwen2's q/k/v), broadcast over the rows.
  const linear = (input: string, weightName: string, biasName?: string) => {
    const located = spec.locate(weightName);
    if (located.quantization) {
      const product = quantizedLinear(g, input, weightName, located);
      return biasName ? g.op('Add', [product, weight(biasName)]) : product;
    }
    return g.op(
      'Gemm',
      biasName ? [input, weight(weightName), weight(biasName)] : [input, weight(weightName)],
      {
        transB: attr.int(1),
      },
    );
  };
  // Rotate-half RoPE on [N, heads, hd]: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
  const rope = (input: string, heads: number) => {
    const split = g.op('Reshape', [input, g.ints('heads_shape', [-1, heads, hd])]);
    const [x1, x2] = g.opN('Split', [split], 2, { axis: attr.int(2) }) as [string, string];
    const first = g.op('Sub', [g.op('Mul', [x1, cos]), g.op('Mul', [x2, sin])]);
    const second = g.op('Add', [g.op('Mul', [x2, cos]), g.op('Mul', [x1, sin])]);
    return g.op('Concat', [first, second], { axis: attr.int(2) }, 'roped');
  };

  for (let layer = layerStart; layer < layerEnd; layer++) {
    const h = rmsNorm(x, layerTensor.attnNorm(layer));
    const qkv = linear(
      h,
      layerTensor.wqkv(layer),
      config.qkvBias ? layerTensor.bqkv(layer) : undefined,
    );
    const [q, k, v] = g.opN('Split', [qkv, g.ints('qkv_split', [nHeads * hd, kvDim, kvDim])], 3, {
      axis: attr.int(1),
    }) as [string, string, string];
    // New keys and values, head-major [B, KV, T, hd]: the layout of the cache they join.
    const headMajor = (input: string, name: string) =>
      g.op(
        'Transpose',
        [g.op('Reshape', [input, kv4Shape])],
        { perm: attr.ints([0, 2, 1, 3]) },
        name,
      );
    const newKey = headMajor(rope(k, nKvHeads), SHARD_IO.newKey(layer));
    const newValue = headMajor(v, SHARD_IO.newValue(layer));
    g.output(newKey, 'float32', ['batch', nKvHeads, 'tokens', hd]);
    g.output(newValue, 'float32', ['batch', nKvHeads, 'tokens', hd]);
    const pastKey = g.input(SHARD_IO.pastKey(layer), 'float32', ['batch', nKvHeads, 'past', hd]);
    const pastValue = g.input(SHARD_IO.pastValue(layer), 'float32', [
      'batch',
      nKvHeads,
      'past',
      hd,
    ]);

    // Queries grouped by KV head: [B, KV, G*T, hd]. The cache is used where it lies: scores
    // against it are (K · Qᵀ)ᵀ, so only the small [P, G*T] result is transposed, and the
    // new tokens are a second, small block of the same softmax. No step copies the cache.
    const q5 = g.op('Reshape', [rope(q, nHeads), q5Shape]);
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
      g.op('Div', [g.op('Concat', [pastScores, newScores], { axis: attr.int(-1) }), scale]),
      groupBias,
    ]);
    const probs = g.op('Softmax', [scores], { axis: attr.int(-1) });
    const pastLength = g.op('Gather', [g.op('Shape', [pastKey]), g.ints('past_axis', [2])], {
      axis: attr.int(0),
    });
    const lastAxis = g.ints('last_axis', [-1]);
    const pastProbs = g.op('Slice', [probs, g.ints('zero', [0]), pastLength, lastAxis]);
    const newProbs = g.op('Slice', [probs, pastLength, g.ints('to_end', [2 ** 31 - 1]), lastAxis]);
    const context = g.op('Add', [
      g.op('MatMul', [pastProbs, pastValue]),
      g.op('MatMul', [newProbs, newValue]),
    ]);
    const context5 = g.op('Reshape', [context, g.ints('ctx5', [0, nKvHeads, group, -1, hd])]);
    const merged = g.op('Reshape', [
      g.op('Transpose', [context5], { perm: attr.ints([0, 3, 1, 2, 4]) }),
      g.ints('ctx_rows', [-1, nHeads * hd]),
    ]);
    x = g.op('Add', [x, linear(merged, layerTensor.wo(layer))], {}, 'residual');

    const f = rmsNorm(x, layerTensor.ffnNorm(layer));
    const [gate, up] = g.opN('Split', [linear(f, layerTensor.w13(layer))], 2, {
      axis: attr.int(1),
    }) as [string, string];
    const activated = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up], {}, 'swiglu');
    x = g.op('Add', [x, linear(activated, layerTensor.w2(layer))], {}, 'residual');
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
    const logits2d = linear(rmsNorm(rows, FINAL_NORM), head);
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
    docString: `layers [${layerStart}, ${layerEnd}) of a ${config.nLayers}-layer Llama`,
  });
}

/** `input × dequant(W)ᵀ` with onnxruntime's MatMulNBits, W being [out, in] as for Gemm. */
function quantizedLinear(
  g: GraphBuilder,
  input: string,
  name: string,
  located: LocatedWeight,
): string {
  const q = located.quantization!;
  const codes = initializer(g, name, 'uint8', located);
  const scales = initializer(g, `${name}.scales`, 'float32', q.scales);
  const zeroPoints = initializer(g, `${name}.zero_points`, 'uint8', q.zeroPoints);
  return g.contribOp('MatMulNBits', [input, codes, scales, zeroPoints], {
    K: attr.int(q.shape[1]),
    N: attr.int(q.shape[0]),
    bits: attr.int(q.bits),
    block_size: attr.int(q.blockSize),
    accuracy_level: attr.int(ACCURACY_LEVEL[q.activations]),
  });
}
