/**
 * A decoded ONNX graph indexed for analysis: nodes in topological order, who
 * produces and who consumes each value, which graph inputs each node's values
 * depend on, and the dominator tree of the token flow.
 */
import { OnnxGraphUnsupportedError } from '@swarmbee/core';
import {
  attribute,
  type GraphProto,
  hasSubgraph,
  MS_DOMAIN,
  type NodeProto,
  onnx,
  type TensorProto,
  type ValueInfoProto,
  valueType,
} from './proto.js';

export interface GraphIndex {
  /** Nodes in topological order. */
  nodes: NodeProto[];
  /** Index (into `nodes`) of the node producing each value. */
  producer: Map<string, number>;
  /** Indices of the nodes reading each value. */
  consumers: Map<string, number[]>;
  inputs: Map<string, ValueInfoProto>;
  outputs: Map<string, ValueInfoProto>;
  initializers: Map<string, TensorProto>;
}

export function indexGraph(graph: GraphProto): GraphIndex {
  const source = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const inputs = new Map(
    (graph.input ?? [])
      .filter((i) => !initializers.has(i.name ?? ''))
      .map((i) => [i.name ?? '', i]),
  );
  const outputs = new Map((graph.output ?? []).map((o) => [o.name ?? '', o]));
  if ((graph.sparseInitializer ?? []).length > 0)
    throw new OnnxGraphUnsupportedError('the graph has sparse initializers');
  const producedBy = new Map<string, number>();
  source.forEach((node, i) => {
    if (hasSubgraph(node)) {
      throw new OnnxGraphUnsupportedError(
        `node ${node.name || i} (${node.opType}) holds a subgraph; control flow such as a merged ` +
          'decoder with and without past cannot be cut: export the decoder-with-past graph alone',
      );
    }
    for (const out of node.output ?? []) if (out) producedBy.set(out, i);
  });
  // Kahn's algorithm, keeping the file's order among ready nodes.
  const waiting = source.map(
    (node) => new Set((node.input ?? []).filter((name) => name && producedBy.has(name))),
  );
  const readers = new Map<string, number[]>();
  source.forEach((node, i) => {
    for (const name of node.input ?? []) {
      if (!name) continue;
      if (!producedBy.has(name) && !inputs.has(name) && !initializers.has(name)) {
        throw new OnnxGraphUnsupportedError(
          `node ${node.name || i} (${node.opType}) reads ${name}, which nothing produces`,
        );
      }
      if (producedBy.has(name)) append(readers, name, i);
    }
  });
  const order: number[] = [];
  const ready = source.map((_, i) => i).filter((i) => waiting[i]!.size === 0);
  const done = new Set<number>();
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    order.push(i);
    done.add(i);
    for (const out of source[i]!.output ?? []) {
      for (const reader of readers.get(out) ?? []) {
        const pending = waiting[reader]!;
        pending.delete(out);
        if (pending.size === 0 && !done.has(reader) && !ready.includes(reader)) ready.push(reader);
      }
    }
  }
  if (order.length !== source.length)
    throw new OnnxGraphUnsupportedError('the graph has a cycle or a node reading its own output');
  const nodes = order.map((i) => source[i]!);
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  nodes.forEach((node, i) => {
    for (const out of node.output ?? []) if (out) producer.set(out, i);
    for (const name of node.input ?? []) {
      if (name) append(consumers, name, i);
    }
  });
  return { nodes, producer, consumers, inputs, outputs, initializers };
}

function append(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Ops whose outputs describe their input's shape, not its values: value dependence stops there. */
const SHAPE_OPS = new Set(['Shape', 'Size']);

/**
 * For each node, the set (a bitmask) of `sources` its outputs' values depend on.
 * Shape and Size break the chain: a mask sized from `input_ids` does not depend on
 * the tokens, and a stage without them can rebuild it from another tensor's shape.
 */
export function valueSources(index: GraphIndex, sources: Map<string, bigint>): bigint[] {
  const masks: bigint[] = [];
  const ofValue = (name: string): bigint => {
    const fromSource = sources.get(name);
    if (fromSource !== undefined) return fromSource;
    const p = index.producer.get(name);
    return p === undefined ? 0n : masks[p]!;
  };
  index.nodes.forEach((node, i) => {
    if (SHAPE_OPS.has(node.opType ?? '') && !node.domain) {
      masks[i] = 0n;
      return;
    }
    let mask = 0n;
    for (const name of node.input ?? []) if (name) mask |= ofValue(name);
    masks[i] = mask;
  });
  return masks;
}

/**
 * Immediate dominators of the token flow: the nodes whose values depend on the
 * tokens, with a virtual root standing for the token input. `idom[v]` is -1 for
 * the root, -2 for nodes outside the token flow. A node that dominates everything
 * after it is a point every token's influence passes through: between two layers
 * that is the residual stream.
 */
export function tokenDominators(
  index: GraphIndex,
  inToken: readonly boolean[],
  tokenInput: string,
): { idom: Int32Array; depth: Int32Array } {
  const n = index.nodes.length;
  const idom = new Int32Array(n).fill(-2);
  const depth = new Int32Array(n);
  const ROOT = -1;
  const depthOf = (v: number) => (v === ROOT ? 0 : depth[v]!);
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      if (depthOf(a) >= depthOf(b)) a = a === ROOT ? ROOT : idom[a]!;
      else b = b === ROOT ? ROOT : idom[b]!;
    }
    return a;
  };
  index.nodes.forEach((node, v) => {
    if (!inToken[v]) return;
    let dom: number | undefined;
    for (const name of node.input ?? []) {
      let pred: number | undefined;
      if (name === tokenInput) pred = ROOT;
      else {
        const p = index.producer.get(name);
        if (p !== undefined && inToken[p]) pred = p;
      }
      if (pred === undefined) continue;
      dom = dom === undefined ? pred : intersect(dom, pred);
    }
    idom[v] = dom ?? ROOT;
    depth[v] = depthOf(idom[v]!) + 1;
  });
  return { idom, depth };
}

const { DataType } = onnx.TensorProto;
const BOOL_OPS = new Set([
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
]);
const INT64_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression']);

/**
 * Element types of every value, inferred forward from the graph IO and
 * initializers with a few rules (Cast says, Shape gives int64, comparisons give
 * bool, most ops keep their first input's type). Enough to tell whether the
 * residual stream is float32 or float16 when the export carries no value_info.
 */
export function inferElementTypes(
  index: GraphIndex,
  valueInfo: ValueInfoProto[],
): Map<string, number> {
  const types = new Map<string, number>();
  for (const [name, info] of index.inputs) types.set(name, valueType(info).elemType);
  for (const [name, t] of index.initializers) types.set(name, t.dataType ?? 0);
  for (const info of valueInfo) {
    const { elemType } = valueType(info);
    if (info.name && elemType) types.set(info.name, elemType);
  }
  for (const node of index.nodes) {
    const op = node.opType ?? '';
    const inputs = node.input ?? [];
    const first = types.get(inputs[0] ?? '') ?? 0;
    (node.output ?? []).forEach((out, k) => {
      if (!out || types.has(out)) return;
      let type = first;
      if (op === 'Cast') type = Number(attribute(node, 'to')?.i ?? 0);
      else if (op === 'CastLike') type = types.get(inputs[1] ?? '') ?? 0;
      else if (INT64_OPS.has(op) || (op === 'TopK' && k === 1)) type = DataType.INT64;
      else if (BOOL_OPS.has(op)) type = DataType.BOOL;
      else if (op === 'Constant' || op === 'ConstantOfShape')
        type = attribute(node, 'value')?.t?.dataType ?? DataType.FLOAT;
      else if (op === 'Where') type = types.get(inputs[1] ?? '') ?? 0;
      else if (op === 'EmbedLayerNormalization' && node.domain === MS_DOMAIN)
        type = k === 1 ? DataType.INT32 : (types.get(inputs[2] ?? '') ?? 0);
      types.set(out, type);
    });
  }
  return types;
}
