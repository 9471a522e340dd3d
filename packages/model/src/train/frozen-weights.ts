/**
 * The frozen base weights inside a training graph. fp32 weights are initializers in
 * external data (the model's own `weights.bin`, nothing copied), cast once to float64
 * in the gradient-check graphs. Quantized weights (MatMulNBits codes) are dequantized
 * in the graph by blocked DequantizeLinear, reading the same bytes: the backward pass
 * needs dY × W, which MatMulNBits (always X × Wᵀ) cannot compute, and the forward pass
 * uses the same dequantized W so the gradients are those of the loss it reports.
 */
import { attr } from '../onnx/graph.js';
import type { LocatedTensor, LocatedWeight } from '../onnx/llama-shard-graph.js';
import type { TrainGraph } from './train-graph.js';

export class FrozenWeights {
  /** Initializers, declared once per graph. */
  readonly #initializers = new Map<string, string>();
  /** Values computed from them (casts, dequantized weights), per phase. */
  #values = new Map<string, string>();
  /** A value quantized weights wait for before they are dequantized (see {@link gate}). */
  #gate: string | undefined;

  constructor(
    private readonly tg: TrainGraph,
    private readonly locate: (tensor: string) => LocatedWeight,
  ) {}

  /**
   * Starts a new phase: weights asked for from now on are cast or dequantized again rather
   * than reused. A recomputing backward graph calls this between its forward and its
   * backward part, so a layer's dequantized weights are freed after the forward part uses
   * them instead of living until the backward part does (every layer's fp32 copy at once).
   */
  newPhase(): void {
    this.#values = new Map();
  }

  /**
   * Quantized weights asked for from now on are dequantized only once `value` exists.
   * onnxruntime runs nodes whose inputs are all initializers first, so without a gate
   * every layer's DequantizeLinear would run at the start and all the fp32 copies would
   * be alive at once; gated on the layer's input, each is made just before its use.
   */
  gate(value: string): void {
    this.#gate = value;
  }

  /** An fp32 tensor (a norm's gain, the embedding table) as a value of the graph's float type. */
  tensor(name: string): string {
    return this.#cached(name, () => {
      const located = this.locate(name);
      if (located.quantization)
        throw new Error(`internal: ${name} is quantized; only linear weights may be`);
      return this.#float(this.#initializer(name, 'float32', located));
    });
  }

  /** A linear weight [out, in] as a value of the graph's float type, dequantized if stored quantized. */
  matrix(name: string): string {
    return this.#cached(name, () => {
      const located = this.locate(name);
      const q = located.quantization;
      if (!q) return this.#float(this.#initializer(name, 'float32', located));
      const [out, cols] = q.shape;
      const padded = Math.ceil(cols / q.blockSize) * q.blockSize;
      const codeType = q.bits === 4 ? 'uint4' : 'uint8';
      // MatMulNBits' codes [out, blocks, blockSize·bits/8] are the bytes of [out, padded] codes.
      const codes = this.#initializer(name, codeType, { ...located, dims: [out, padded] });
      let scales = this.#initializer(`${name}.scales`, 'float32', q.scales);
      if (this.#gate) {
        // The scales reshaped to their own shape, computed from the gate's: a view that
        // waits for the gate (4-bit tensors have no Reshape kernel; the scales are fp32).
        const tg = this.tg;
        const zero = tg.op('Mul', [tg.op('Size', [this.#gate]), tg.ints([0])]);
        const dims = [out, padded / q.blockSize];
        scales = tg.reshape(scales, tg.op('Add', [zero, tg.ints(dims)]));
      }
      const zeroPoints = this.#initializer(`${name}.zero_points`, codeType, {
        ...q.zeroPoints,
        dims: [out, padded / q.blockSize],
      });
      let w = this.tg.g.op('DequantizeLinear', [codes, scales, zeroPoints], {
        axis: attr.int(1),
        block_size: attr.int(q.blockSize),
      });
      if (padded !== cols)
        w = this.tg.op('Slice', [w, this.tg.ints([0]), this.tg.ints([cols]), this.tg.ints([1])]);
      return this.#float(w);
    });
  }

  #cached(name: string, make: () => string): string {
    let value = this.#values.get(name);
    if (value === undefined) {
      value = make();
      this.#values.set(name, value);
    }
    return value;
  }

  #float(value: string): string {
    return this.tg.float === 'float64' ? this.tg.cast(value, 'float64') : value;
  }

  #initializer(name: string, dtype: 'float32' | 'uint8' | 'uint4', tensor: LocatedTensor): string {
    const known = this.#initializers.get(name);
    if (known !== undefined) return known;
    const g = this.tg.g;
    let value: string;
    if (tensor.where && !tensor.data) value = g.external(name, dtype, tensor.dims, tensor.where);
    else if (tensor.data && !tensor.where)
      value = g.constant(name, dtype, tensor.dims, tensor.data);
    else
      throw new Error(`internal: tensor ${name} must be located by exactly one of where or data`);
    this.#initializers.set(name, value);
    return value;
  }
}

/**
 * MatMulNBits packs each row's 4-bit zero points into whole bytes; DequantizeLinear
 * reads them as one packed [rows, blocks] tensor. The two agree when `blocks` is even;
 * otherwise this repacks them (a few bytes per row).
 */
export function contiguousZeroPoints(perRow: Uint8Array, rows: number, blocks: number): Uint8Array {
  const rowBytes = Math.ceil(blocks / 2);
  const out = new Uint8Array(Math.ceil((rows * blocks) / 2));
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const byte = perRow[r * rowBytes + (b >> 1)]!;
      const code = b & 1 ? byte >> 4 : byte & 0x0f;
      const i = r * blocks + b;
      out[i >> 1]! |= i & 1 ? code << 4 : code;
    }
  }
  return out;
}
