/**
 * The per-family blocks of the decoder graph, each chosen from the config: RMSNorm,
 * linear layers (fp32 Gemm or quantized MatMulNBits, with an optional bias), RoPE
 * tables and rotation, the gated feed-forward (SwiGLU or GELU-tanh), and logit
 * soft-capping. `buildLlamaShardGraph` strings them into layers.
 */
import { headDim, type LlamaConfig, type RopeSpec, type WeightQuantization } from '@swarmbee/core';
import { loraStackTensor } from '../lora/stack-names.js';
import { attr, type ExternalLocation, type GraphBuilder } from './graph.js';
import { ropeTables } from './rope.js';

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

/**
 * LoRA adapters served unmerged (see `lora/served-adapters.ts`): each row's adapter index
 * (`adapter_ids` int64 [B], 0 for the base) and, per base tensor some adapter changes, its
 * stacked A [N+1, in, R] and B [N+1, R, out].
 */
export interface ServedLoraGraph {
  /** The graph value of the rows' adapter indices, int64 [B]. */
  ids: string;
  /** A base tensor's stacks, or undefined when no served adapter changes it. */
  stack(tensor: string): { a: LocatedTensor; b: LocatedTensor } | undefined;
}

/** onnxruntime's MatMulNBits `accuracy_level` for each way of treating activations. */
const ACCURACY_LEVEL: Record<WeightQuantization['activations'], number> = {
  float32: 0,
  int8: 4,
};

/** √(2/π), the constant of GELU's tanh approximation. */
const GELU_TANH_SCALE = Math.sqrt(2 / Math.PI);
const GELU_TANH_CUBIC = 0.044715;

/** cos and sin tables of one RoPE, [maxSeqLen, hd/2]: onnxruntime RotaryEmbedding's caches. */
export interface RopeCaches {
  cos: string;
  sin: string;
}

/** cos and sin rows of the batch's positions, [B·T, 1, hd/2], ready to broadcast over heads. */
export interface RopeRows {
  cos: string;
  sin: string;
}

export class DecoderBlocks {
  readonly hd: number;
  readonly #weights = new Map<string, string>();
  readonly #ropes = new Map<string, RopeRows>();
  readonly #ropeCaches = new Map<string, RopeCaches>();
  #ropePositions: string | undefined;
  /** [B], the rows of the batch, read off `adapter_ids` once. */
  #batch: string | undefined;
  /** [B, -1, in] by `in`: the shape that groups [B·T, in] rows by batch row, made once each. */
  readonly #loraRowShapes = new Map<number, string>();
  readonly #eps: string;
  readonly #two: string;

  constructor(
    readonly g: GraphBuilder,
    readonly config: LlamaConfig,
    readonly locate: (tensor: string) => LocatedWeight,
    /** Token positions flattened to [B·T]. */
    readonly flatPositions: string,
    /** Adapters served unmerged, chosen per row. Default: none. */
    readonly lora?: ServedLoraGraph,
  ) {
    this.hd = headDim(config);
    this.#eps = g.scalar('norm_eps', config.normEps);
    this.#two = g.scalar('two', 2);
  }

  /** An fp32 weight's initializer, declared once. */
  weight(name: string): string {
    let value = this.#weights.get(name);
    if (value === undefined) {
      const located = this.locate(name);
      if (located.quantization)
        throw new Error(
          `internal: ${name} is quantized; only linear layers take quantized weights`,
        );
      value = initializer(this.g, name, 'float32', located);
      this.#weights.set(name, value);
    }
    return value;
  }

  /** RMSNorm over the last axis: `x / √(mean(x²) + ε) · w`. */
  rmsNorm(input: string, weightName: string): string {
    const { g } = this;
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [input, this.#two])], {
      axes: attr.ints([-1]),
      keepdims: attr.int(1),
    });
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, this.#eps])]);
    return g.op('Mul', [g.op('Div', [input, rms]), this.weight(weightName)], {}, 'normed');
  }

  /**
   * `input × Wᵀ (+ b)` over [rows, in]; Gemm's optional C input carries the bias. With
   * adapters served unmerged, plus each row's adapter update (see {@link ServedLoraGraph}).
   */
  linear(input: string, weightName: string, biasName?: string): string {
    const { g } = this;
    const located = this.locate(weightName);
    let product: string;
    if (located.quantization) {
      product = quantizedLinear(g, input, weightName, located);
      if (biasName) product = g.op('Add', [product, this.weight(biasName)]);
    } else {
      product = g.op(
        'Gemm',
        biasName
          ? [input, this.weight(weightName), this.weight(biasName)]
          : [input, this.weight(weightName)],
        { transB: attr.int(1) },
      );
    }
    const stack = this.lora?.stack(weightName);
    return stack ? g.op('Add', [product, this.#loraUpdate(input, weightName, stack)]) : product;
  }

  /**
   * Each row's adapter update of `input` [B·T, in]: its slot of A and B gathered by
   * `adapter_ids`, then `(x · Aᵀ) · (scale · B)ᵀ` batched over the rows, [B·T, out].
   */
  #loraUpdate(
    input: string,
    tensor: string,
    stack: { a: LocatedTensor; b: LocatedTensor },
  ): string {
    const { g } = this;
    const { ids } = this.lora!;
    const [, inDim] = stack.a.dims as [number, number, number];
    const [, , outDim] = stack.b.dims as [number, number, number];
    const stacked = (name: string, located: LocatedTensor) =>
      g.op('Gather', [initializer(g, name, 'float32', located), ids]);
    const a = stacked(loraStackTensor.a(tensor), stack.a);
    const b = stacked(loraStackTensor.b(tensor), stack.b);
    let byRow = this.#loraRowShapes.get(inDim);
    if (byRow === undefined) {
      this.#batch ??= g.op('Shape', [ids], {}, 'lora_batch');
      byRow = g.op('Concat', [this.#batch, g.ints('lora_rows_tail', [-1, inDim])], {
        axis: attr.int(0),
      });
      this.#loraRowShapes.set(inDim, byRow);
    }
    const rows = g.op('Reshape', [input, byRow], {}, 'lora_rows');
    const update = g.op('MatMul', [g.op('MatMul', [rows, a], {}, 'lora_down'), b], {}, 'lora_up');
    return g.op('Reshape', [update, g.ints('lora_flat', [-1, outDim])], {}, 'lora_update');
  }

  /**
   * The LM head: {@link linear}, except that an fp32 weight in external data larger than
   * `chunkBytes` is multiplied in slices of rows (each its own initializer over the same file
   * bytes) whose products are concatenated. onnxruntime copies a Gemm's weight into its own
   * memory while loading, with the source still resident: slices bound that transient by the
   * slice, not the whole 128k-token head (1 GB at fp32 for Llama 3.2 1B). Same products.
   */
  head(input: string, weightName: string, chunkBytes: number): string {
    const located = this.locate(weightName);
    const [rows, cols] = located.dims as [number, number];
    const where = located.where;
    const rowBytes = cols * 4;
    if (located.quantization || !where || rows * rowBytes <= chunkBytes)
      return this.linear(input, weightName);
    const { g } = this;
    const rowsPerChunk = Math.max(1, Math.floor(chunkBytes / rowBytes));
    const products: string[] = [];
    for (let first = 0; first < rows; first += rowsPerChunk) {
      const count = Math.min(rowsPerChunk, rows - first);
      const slice = g.external(`${weightName}.rows_${first}`, 'float32', [count, cols], {
        location: where.location,
        offset: where.offset + first * rowBytes,
        length: count * rowBytes,
      });
      products.push(g.op('Gemm', [input, slice], { transB: attr.int(1) }));
    }
    return g.op('Concat', products, { axis: attr.int(1) });
  }

  /** The cos/sin rows of one RoPE, gathered for the batch's positions once per graph. */
  ropeRows(spec: RopeSpec): RopeRows {
    const key = JSON.stringify(spec);
    let rows = this.#ropes.get(key);
    if (!rows) {
      const { g } = this;
      const tables = ropeTables(this.config, spec);
      const dims = [this.config.maxSeqLen, this.hd / 2];
      const axis = g.ints('axis1', [1]);
      const gather = (name: string, table: Float32Array) =>
        g.op(
          'Unsqueeze',
          [
            g.op('Gather', [
              g.constant(`rope_${name}`, 'float32', dims, table),
              this.flatPositions,
            ]),
            axis,
          ],
          {},
          name,
        );
      rows = { cos: gather('cos', tables.cos), sin: gather('sin', tables.sin) };
      this.#ropes.set(key, rows);
    }
    return rows;
  }

  /** The tables of one RoPE as constants, once per graph. */
  ropeCaches(spec: RopeSpec): RopeCaches {
    const key = JSON.stringify(spec);
    let caches = this.#ropeCaches.get(key);
    if (!caches) {
      const tables = ropeTables(this.config, spec);
      const dims = [this.config.maxSeqLen, this.hd / 2];
      caches = {
        cos: this.g.constant('rope_cos_cache', 'float32', dims, tables.cos),
        sin: this.g.constant('rope_sin_cache', 'float32', dims, tables.sin),
      };
      this.#ropeCaches.set(key, caches);
    }
    return caches;
  }

  /**
   * Rotate-half RoPE by onnxruntime's fused `com.microsoft.RotaryEmbedding`: one node where
   * {@link rope} takes eight. `input` holds [N, heads·hd] in any shape (N = B·T tokens, in
   * the order of the positions); the result is [N, 1, heads·hd].
   */
  rotary(input: string, heads: number, caches: RopeCaches): string {
    const { g } = this;
    this.#ropePositions ??= g.op(
      'Reshape',
      [this.flatPositions, g.ints('token_rows', [-1, 1])],
      {},
      'rope_positions',
    );
    const rows = g.op('Reshape', [input, g.ints(`rope_rows_${heads}`, [-1, 1, heads * this.hd])]);
    return g.contribOp('RotaryEmbedding', [rows, this.#ropePositions, caches.cos, caches.sin], {
      interleaved: attr.int(0),
      num_heads: attr.int(heads),
      rotary_embedding_dim: attr.int(this.hd),
    });
  }

  /** Rotate-half RoPE on [N, heads, hd]: (x1, x2) → (x1 cos − x2 sin, x2 cos + x1 sin). */
  rope(heads: string, rows: RopeRows): string {
    const { g } = this;
    const [x1, x2] = g.opN('Split', [heads], 2, { axis: attr.int(2) }) as [string, string];
    const first = g.op('Sub', [g.op('Mul', [x1, rows.cos]), g.op('Mul', [x2, rows.sin])]);
    const second = g.op('Add', [g.op('Mul', [x2, rows.cos]), g.op('Mul', [x1, rows.sin])]);
    return g.op('Concat', [first, second], { axis: attr.int(2) }, 'roped');
  }

  /** [N, heads·hd] as [N, heads, hd]. */
  heads(input: string, heads: number): string {
    return this.g.op('Reshape', [input, this.g.ints(`heads_${heads}`, [-1, heads, this.hd])]);
  }

  /** The gated feed-forward: `w2 · (act(gate) ⊙ up)`, gate and up being w13's halves. */
  feedForward(input: string, w13: string, w2: string): string {
    const { g } = this;
    const [gate, up] = g.opN('Split', [this.linear(input, w13)], 2, {
      axis: attr.int(1),
    }) as [string, string];
    const activated =
      this.config.activation === 'gelu-tanh'
        ? this.#geluTanh(gate)
        : g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    return this.linear(g.op('Mul', [activated, up], {}, 'gated'), w2);
  }

  /** `cap · tanh(x / cap)`. */
  softcap(input: string, cap: number): string {
    const { g } = this;
    const c = g.scalar('softcap', cap);
    return g.op('Mul', [g.op('Tanh', [g.op('Div', [input, c])]), c], {}, 'softcapped');
  }

  /** PyTorch's `gelu(approximate='tanh')`: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
  #geluTanh(x: string): string {
    const { g } = this;
    const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Mul', [
      g.op('Add', [x, g.op('Mul', [cube, g.scalar('gelu_cubic', GELU_TANH_CUBIC)])]),
      g.scalar('gelu_scale', GELU_TANH_SCALE),
    ]);
    const one = g.scalar('one', 1);
    const half = g.scalar('half', 0.5);
    return g.op('Mul', [g.op('Mul', [x, half]), g.op('Add', [one, g.op('Tanh', [inner])])]);
  }
}

export function initializer(
  g: GraphBuilder,
  name: string,
  dtype: 'float32' | 'uint8',
  tensor: LocatedTensor,
): string {
  if (tensor.where && !tensor.data) return g.external(name, dtype, tensor.dims, tensor.where);
  if (tensor.data && !tensor.where) return g.constant(name, dtype, tensor.dims, tensor.data);
  throw new Error(`internal: tensor ${name} must be located by exactly one of where or data`);
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
