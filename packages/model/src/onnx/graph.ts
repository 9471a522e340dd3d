/**
 * A small builder over onnx-proto's generated protobuf classes: name values,
 * add nodes, and encode a ModelProto. Shapes are only declared at graph IO.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const DataType = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
  /**
   * Packed 4-bit codes, two per byte, low nibble first (ONNX IR 10). onnx-proto 8 predates
   * the type, so its enum value (21) is spelled out.
   */
  uint4: 21,
} as const;
export type GraphDtype = keyof typeof DataType;

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] };

export const attr = {
  int: (value: number): Attribute => ({ kind: 'int', value }),
  float: (value: number): Attribute => ({ kind: 'float', value }),
  ints: (value: number[]): Attribute => ({ kind: 'ints', value }),
};

/** Version of the `com.microsoft` contrib opset that graphs using its ops import. */
export const CONTRIB_OPSET = 1;
export const CONTRIB_DOMAIN = 'com.microsoft';

/** Where an initializer's bytes live outside the model file. */
export interface ExternalLocation {
  /** File name relative to the directory ONNX Runtime resolves external data against. */
  location: string;
  offset: number;
  length: number;
}

export class GraphBuilder {
  readonly #nodes: onnxProto.onnx.INodeProto[] = [];
  readonly #initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly #inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #names = new Map<string, number>();
  readonly #intConstants = new Map<string, string>();
  /** Operator domains other than the default one that nodes use (each needs an opset import). */
  readonly #domains = new Set<string>();

  constructor(readonly name: string) {}

  /** A unique value name derived from `hint`. */
  fresh(hint: string): string {
    const n = this.#names.get(hint) ?? 0;
    this.#names.set(hint, n + 1);
    return n === 0 ? hint : `${hint}_${n}`;
  }

  input(name: string, dtype: GraphDtype, dims: Dim[]): string {
    this.#inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  output(value: string, dtype: GraphDtype, dims: Dim[]): void {
    this.#outputs.push(valueInfo(value, dtype, dims));
  }

  /** An initializer whose bytes are embedded in the model file. */
  constant(
    hint: string,
    dtype: GraphDtype,
    dims: number[],
    data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array,
  ): string {
    const name = this.fresh(hint);
    this.#initializers.push({
      name,
      dataType: DataType[dtype],
      dims,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** An int64 vector constant (shapes, axes, indices); equal vectors share one initializer. */
  ints(hint: string, values: number[]): string {
    const key = values.join(',');
    let name = this.#intConstants.get(key);
    if (name === undefined) {
      name = this.constant(hint, 'int64', [values.length], BigInt64Array.from(values, BigInt));
      this.#intConstants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant. */
  scalar(hint: string, value: number): string {
    return this.constant(hint, 'float32', [], Float32Array.of(value));
  }

  /** An initializer whose bytes stay in an external file. */
  external(name: string, dtype: GraphDtype, dims: number[], where: ExternalLocation): string {
    this.#initializers.push({
      name,
      dataType: DataType[dtype],
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: where.location },
        { key: 'offset', value: String(where.offset) },
        { key: 'length', value: String(where.length) },
      ],
    });
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  op(
    opType: string,
    inputs: string[],
    attributes: Record<string, Attribute> = {},
    hint?: string,
  ): string {
    return this.opN(opType, inputs, 1, attributes, hint)[0]!;
  }

  /** Adds a node with `outputs` outputs and returns their names. */
  opN(
    opType: string,
    inputs: string[],
    outputs: number,
    attributes: Record<string, Attribute> = {},
    hint?: string,
  ): string[] {
    const base = hint ?? opType.toLowerCase();
    const names = Array.from({ length: outputs }, (_, i) =>
      this.fresh(outputs === 1 ? base : `${base}_${i}`),
    );
    this.#nodes.push({
      opType,
      name: this.fresh(`${base}_node`),
      input: inputs,
      output: names,
      attribute: Object.entries(attributes).map(([name, a]) => toAttributeProto(name, a)),
    });
    return names;
  }

  /**
   * Adds a node of a contrib operator (`com.microsoft`, e.g. MatMulNBits) with one output;
   * the graph then imports that opset. Empty strings in `inputs` skip optional inputs.
   */
  contribOp(
    opType: string,
    inputs: string[],
    attributes: Record<string, Attribute> = {},
    hint?: string,
  ): string {
    const name = this.op(opType, inputs, attributes, hint);
    this.#nodes.at(-1)!.domain = CONTRIB_DOMAIN;
    this.#domains.add(CONTRIB_DOMAIN);
    return name;
  }

  /**
   * A contrib operator's node whose outputs take exactly the names given (graph outputs
   * that must keep their contract names, such as a fused attention's present KV); the
   * names must be unused.
   */
  contribNode(
    opType: string,
    inputs: string[],
    outputs: string[],
    attributes: Record<string, Attribute> = {},
  ): string[] {
    for (const output of outputs) this.fresh(output);
    this.#nodes.push({
      opType,
      domain: CONTRIB_DOMAIN,
      name: this.fresh(`${opType.toLowerCase()}_node`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attributes).map(([name, a]) => toAttributeProto(name, a)),
    });
    this.#domains.add(CONTRIB_DOMAIN);
    return outputs;
  }

  /** `irVersion` defaults to 8; graphs with 4-bit tensors need 10. */
  encode(options: {
    opset: number;
    producer: string;
    docString?: string;
    irVersion?: number;
  }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: options.irVersion ?? 8,
      producerName: options.producer,
      docString: options.docString ?? '',
      opsetImport: [
        { domain: '', version: options.opset },
        ...[...this.#domains].map((domain) => ({ domain, version: CONTRIB_OPSET })),
      ],
      graph: {
        name: this.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dtype: GraphDtype, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType[dtype],
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function toAttributeProto(name: string, a: Attribute): onnxProto.onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (a.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: a.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: a.value };
  }
}
