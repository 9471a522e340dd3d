/**
 * Reading ONNX protobufs decoded by onnx-proto: int64 fields arrive as Long
 * objects, tensors keep their bytes in one of several places (raw bytes, typed
 * fields, or an external file), and element types are enum numbers. These
 * helpers hide that, so the splitter reads like the graph it walks.
 */
import { OnnxGraphUnsupportedError, type OnnxWeightDtype } from '@swarmbee/core';
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type GraphProto = onnxProto.onnx.IGraphProto;

/** The Microsoft contrib-op domain of onnxruntime's fused operators. */
export const MS_DOMAIN = 'com.microsoft';

type LongLike = number | { toNumber(): number };

/** An int64 protobuf field as a JS number (all sizes here are far below 2^53). */
export function toNumber(value: LongLike | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

const { DataType } = onnx.TensorProto;

const DTYPES: Partial<Record<number, { name: OnnxWeightDtype; bytes: number }>> = {
  [DataType.FLOAT]: { name: 'float32', bytes: 4 },
  [DataType.FLOAT16]: { name: 'float16', bytes: 2 },
  [DataType.BFLOAT16]: { name: 'bfloat16', bytes: 2 },
  [DataType.DOUBLE]: { name: 'float64', bytes: 8 },
  [DataType.INT8]: { name: 'int8', bytes: 1 },
  [DataType.UINT8]: { name: 'uint8', bytes: 1 },
  [DataType.INT16]: { name: 'int16', bytes: 2 },
  [DataType.UINT16]: { name: 'uint16', bytes: 2 },
  [DataType.INT32]: { name: 'int32', bytes: 4 },
  [DataType.UINT32]: { name: 'uint32', bytes: 4 },
  [DataType.INT64]: { name: 'int64', bytes: 8 },
  [DataType.UINT64]: { name: 'uint64', bytes: 8 },
  [DataType.BOOL]: { name: 'bool', bytes: 1 },
};

/** Name and element size of an ONNX element type; strings and complex numbers are refused. */
export function dtypeOf(dataType: number, what: string): { name: OnnxWeightDtype; bytes: number } {
  const known = DTYPES[dataType];
  if (!known) {
    throw new OnnxGraphUnsupportedError(
      `${what} has ONNX element type ${DataType[dataType] ?? dataType}, which SwarmBee does not store`,
    );
  }
  return known;
}

/** The ONNX enum number of an element type name. */
export function dataTypeNumber(name: OnnxWeightDtype): number {
  for (const [number, dtype] of Object.entries(DTYPES)) if (dtype?.name === name) return +number;
  throw new OnnxGraphUnsupportedError(`no ONNX element type is called ${name}`);
}

export function tensorDims(tensor: TensorProto): number[] {
  return (tensor.dims ?? []).map(toNumber);
}

/** Bytes a tensor's data takes as raw little-endian elements. */
export function tensorByteLength(tensor: TensorProto): number {
  const { bytes } = dtypeOf(tensor.dataType ?? 0, `initializer ${tensor.name}`);
  return tensorDims(tensor).reduce((a, b) => a * b, 1) * bytes;
}

export function isExternal(tensor: TensorProto): boolean {
  return tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
}

/** Where an external tensor's bytes are: file (relative to the graph's directory), offset, length. */
export function externalLocation(tensor: TensorProto): {
  location: string;
  offset: number;
  length: number;
} {
  const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  if (!location) {
    throw new OnnxGraphUnsupportedError(
      `initializer ${tensor.name} is stored externally but names no location`,
    );
  }
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : tensorByteLength(tensor);
  return { location, offset, length };
}

/**
 * An inline tensor's data as raw little-endian bytes, whichever field holds it:
 * `raw_data`, or the typed fields (`float_data`, `int32_data` — which also carries
 * 8- and 16-bit types, fp16 included, one element per int32 — `int64_data`, ...).
 */
export function inlineBytes(tensor: TensorProto): Uint8Array {
  if (tensor.rawData && tensor.rawData.length > 0) return tensor.rawData;
  const dataType = tensor.dataType ?? 0;
  const { bytes } = dtypeOf(dataType, `initializer ${tensor.name}`);
  const count = tensorDims(tensor).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(count * bytes);
  const view = new DataView(out.buffer);
  const fill = (values: ArrayLike<LongLike>, put: (i: number, v: LongLike) => void) => {
    for (let i = 0; i < Math.min(count, values.length); i++) put(i, values[i]!);
  };
  switch (dataType) {
    case DataType.FLOAT:
      fill(tensor.floatData ?? [], (i, v) => view.setFloat32(i * 4, v as number, true));
      break;
    case DataType.DOUBLE:
      fill(tensor.doubleData ?? [], (i, v) => view.setFloat64(i * 8, v as number, true));
      break;
    case DataType.INT64:
      fill(tensor.int64Data ?? [], (i, v) => view.setBigInt64(i * 8, BigInt(toNumber(v)), true));
      break;
    case DataType.UINT64:
    case DataType.UINT32:
      fill(tensor.uint64Data ?? [], (i, v) =>
        bytes === 8
          ? view.setBigUint64(i * 8, BigInt(toNumber(v)), true)
          : view.setUint32(i * 4, toNumber(v), true),
      );
      break;
    default:
      // int32_data carries INT32 and every narrower type (bool, int8, uint8, int16, uint16, float16, bfloat16).
      fill(tensor.int32Data ?? [], (i, v) => {
        const n = v as number;
        if (bytes === 4) view.setInt32(i * 4, n, true);
        else if (bytes === 2) view.setUint16(i * 2, n & 0xffff, true);
        else view.setUint8(i, n & 0xff);
      });
  }
  return out;
}

/** A graph IO's element type number and dims (a number, a symbolic name, or undefined when unnamed). */
export function valueType(info: ValueInfoProto): {
  elemType: number;
  dims: (number | string | undefined)[];
} {
  const tensorType = info.type?.tensorType;
  const dims = (tensorType?.shape?.dim ?? []).map((d) =>
    d.dimParam
      ? d.dimParam
      : d.dimValue !== null && d.dimValue !== undefined
        ? toNumber(d.dimValue)
        : undefined,
  );
  return { elemType: tensorType?.elemType ?? 0, dims };
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttribute(node: NodeProto, name: string): number | undefined {
  const a = attribute(node, name);
  return a ? toNumber(a.i) : undefined;
}

/** Whether a node carries subgraphs (If, Loop, Scan): they read outer values their inputs do not list. */
export function hasSubgraph(node: NodeProto): boolean {
  const { AttributeType } = onnx.AttributeProto;
  return (node.attribute ?? []).some(
    (a) =>
      a.type === AttributeType.GRAPH || a.type === AttributeType.GRAPHS || a.g || a.graphs?.length,
  );
}

/** The version of the default (ai.onnx) opset a model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return toNumber(entry?.version);
}
