/**
 * A GraphBuilder for training graphs: every float value has the graph's float type
 * (float32 to train, float64 to check gradients against finite differences), and the
 * ops the layer code needs are one call each. Opset 21 (blocked DequantizeLinear for
 * quantized bases), so reductions take their axes as an input.
 */
import { attr, type Dim, GraphBuilder } from '../onnx/graph.js';

export type FloatType = 'float32' | 'float64';

export const TRAIN_OPSET = 21;
/** IR 10: the first with 4-bit tensors, which int4 bases' codes are read as. */
export const TRAIN_IR_VERSION = 10;

export class TrainGraph {
  readonly g: GraphBuilder;
  readonly #scalars = new Map<number, string>();

  constructor(
    name: string,
    readonly float: FloatType,
  ) {
    this.g = new GraphBuilder(name);
  }

  /** A float input of the graph's float type. */
  input(name: string, dims: Dim[]): string {
    return this.g.input(name, this.float, dims);
  }

  /** Makes `value` a graph output named `name` (an Identity when the names differ). */
  output(value: string, name: string, dims: Dim[]): void {
    const named = value === name ? value : this.g.op('Identity', [value], {}, name);
    if (named !== name) throw new Error(`internal: output name ${name} is taken`);
    this.g.output(named, this.float, dims);
  }

  /** A scalar constant of the float type; equal values share one initializer. */
  scalar(value: number): string {
    let name = this.#scalars.get(value);
    if (name === undefined) {
      const data = this.float === 'float64' ? Float64Array.of(value) : Float32Array.of(value);
      name = this.g.constant('c', this.float, [], data);
      this.#scalars.set(value, name);
    }
    return name;
  }

  /** A float table of the float type from fp32 values (RoPE tables). */
  table(hint: string, dims: number[], values: Float32Array): string {
    const data = this.float === 'float64' ? Float64Array.from(values) : values;
    return this.g.constant(hint, this.float, dims, data);
  }

  ints(values: number[]): string {
    return this.g.ints('i', values);
  }

  op(opType: string, inputs: string[], attributes: Parameters<GraphBuilder['op']>[2] = {}): string {
    return this.g.op(opType, inputs, attributes);
  }

  add(a: string, b: string): string {
    return this.g.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.g.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.g.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.g.op('Div', [a, b]);
  }
  /** Sum of any number of values (at least one). */
  sum(values: string[]): string {
    let total = values[0]!;
    for (const v of values.slice(1)) total = this.add(total, v);
    return total;
  }
  scale(x: string, factor: number): string {
    return factor === 1 ? x : this.mul(x, this.scalar(factor));
  }

  matmul(a: string, b: string): string {
    return this.g.op('MatMul', [a, b]);
  }
  /** a × bᵀ for 2-D a and b (a linear layer with a PyTorch [out, in] weight). */
  matmulT(a: string, b: string): string {
    return this.g.op('Gemm', [a, b], { transB: attr.int(1) });
  }
  /** aᵀ × b for 2-D a and b (weight gradients: dYᵀ × X). */
  tMatmul(a: string, b: string): string {
    return this.g.op('Gemm', [a, b], { transA: attr.int(1) });
  }

  reduceMean(x: string, axes: number[]): string {
    return this.g.op('ReduceMean', [x, this.ints(axes)], { keepdims: attr.int(1) });
  }
  reduceSumKeep(x: string, axes: number[]): string {
    return this.g.op('ReduceSum', [x, this.ints(axes)], { keepdims: attr.int(1) });
  }
  /** The sum of every element, as a scalar. */
  reduceAll(x: string): string {
    return this.g.op('ReduceSum', [x], { keepdims: attr.int(0) });
  }

  reshape(x: string, shape: string | number[]): string {
    return this.g.op('Reshape', [x, typeof shape === 'string' ? shape : this.ints(shape)]);
  }
  transpose(x: string, perm: number[]): string {
    return this.g.op('Transpose', [x], { perm: attr.ints(perm) });
  }
  /** Swaps the last two axes of a 4-D value. */
  transposeLast(x: string): string {
    return this.transpose(x, [0, 1, 3, 2]);
  }
  /** The parts' names, in a fresh array (the builder keeps its own as the node's outputs). */
  split(x: string, sizes: number[], axis: number): string[] {
    return [...this.g.opN('Split', [x, this.ints(sizes)], sizes.length, { axis: attr.int(axis) })];
  }
  concat(values: string[], axis: number): string {
    return values.length === 1 ? values[0]! : this.g.op('Concat', values, { axis: attr.int(axis) });
  }
  cast(x: string, to: FloatType | 'int64'): string {
    const code = { float32: 1, float64: 11, int64: 7 }[to];
    return this.g.op('Cast', [x], { to: attr.int(code) });
  }

  encode(producer: string, docString: string): Uint8Array {
    return this.g.encode({
      opset: TRAIN_OPSET,
      irVersion: TRAIN_IR_VERSION,
      producer,
      docString,
    });
  }
}
