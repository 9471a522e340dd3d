/**
 * Graph surgery: the ONNX graph of layers [start, end) cut out of an imported
 * decoder. Working backwards from what the stage must output (the residual at
 * its end cut, or the logits; its layers' presents), it keeps every node those
 * need, stopping at what the stage is given: the original inputs (token ids on
 * the first stage only), its own layers' pasts, and — after a cut — the hidden
 * state, which stands in for the residual tensor there. Mask and position
 * preprocessing that only reads shapes and inputs is recomputed in every stage.
 * Initializers stay external: the caller decides where each one's bytes live.
 */
import {
  type DecoderFloatDtype,
  type OnnxDecoderLayout,
  type OnnxDecoderStageIo,
  OnnxGraphUnsupportedError,
  ShardInvalidError,
} from '@swarmbee/core';
import { SHARD_IO } from '../onnx/shard-io.js';
import type { LayerRange } from '../shard.js';
import { attentionBiasNodes, type ExtraValueSource } from './attention-bias.js';
import type { GraphIndex } from './graph-index.js';
import {
  intAttribute,
  type ModelProto,
  MS_DOMAIN,
  type NodeProto,
  onnx,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

export interface StageGraphSpec {
  /** The model dir's graph, decoded, and its index. */
  model: ModelProto;
  index: GraphIndex;
  layout: OnnxDecoderLayout;
  nLayers: number;
  dim: number;
  range: LayerRange;
  /** The initializer as the stage graph should carry it (e.g. pointing into the shard's own weights file). */
  place: (tensor: TensorProto) => TensorProto;
  producer: string;
}

export interface StageGraph {
  onnx: Uint8Array;
  io: OnnxDecoderStageIo;
  /** Names of the initializers the stage reads, in the order it first reads them. */
  initializers: string[];
}

type FloatDtype = DecoderFloatDtype;

const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

export function cutStageGraph(spec: StageGraphSpec): StageGraph {
  const { index, layout, range, nLayers } = spec;
  const { start, end } = range;
  const isFirst = start === 0;
  const isLast = end === nLayers;
  for (const name of [SHARD_IO.hiddenIn, SHARD_IO.hiddenOut]) {
    if (index.producer.has(name) || index.inputs.has(name) || index.initializers.has(name))
      throw new OnnxGraphUnsupportedError(`the graph already has a value named ${name}`);
  }
  const ownPasts = layout.kv.past.slice(start, end);
  const givenInputs = new Set([
    layout.positionIds.name,
    layout.attentionMask.name,
    ...ownPasts.flat(),
  ]);
  if (isFirst) givenInputs.add(layout.inputIds.name);
  const entry = isFirst ? undefined : layout.cuts[start - 1]!;
  const exit = isLast ? undefined : layout.cuts[end - 1]!;
  const prologueMade = new Set<string>();
  // Mask-derived attention biases are rebuilt from the mask and the positions' shape.
  const biases = new Map((layout.attentionBiases ?? []).map((b) => [b.tensor, b]));
  const neededBiases = new Set<string>();
  if (entry) {
    prologueMade.add(entry.residual);
    if (entry.normalized) prologueMade.add(entry.normalized.tensor);
  }

  // Backwards from the targets to what the stage is given.
  const targets = [
    isLast ? layout.logits : exit!.residual,
    ...layout.kv.present.slice(start, end).flat(),
  ];
  const keep = new Set<number>();
  const usedInputs = new Set<string>();
  const usedInitializers = new Set<string>();
  const shapeProxies = new Map<number, string>();
  const pending = [...targets];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (!name || prologueMade.has(name)) continue;
    if (biases.has(name)) {
      if (!neededBiases.has(name)) pending.push(layout.attentionMask.name, layout.positionIds.name);
      neededBiases.add(name);
      continue;
    }
    if (givenInputs.has(name)) {
      usedInputs.add(name);
      continue;
    }
    if (index.initializers.has(name)) {
      usedInitializers.add(name);
      continue;
    }
    if (index.inputs.has(name)) {
      throw new ShardInvalidError(
        `layers [${start}, ${end}) need the input ${name}, which only another stage has`,
      );
    }
    const p = index.producer.get(name);
    if (p === undefined) throw new ShardInvalidError(`nothing produces ${name}`);
    if (keep.has(p)) continue;
    keep.add(p);
    const node = index.nodes[p]!;
    const input = node.input?.[0] ?? '';
    if (node.opType === 'Shape' && index.inputs.has(input) && !givenInputs.has(input)) {
      // Only the shape is read: take it from a tensor of the same leading dims this stage has.
      shapeProxies.set(p, input);
      continue;
    }
    pending.push(...(node.input ?? []));
  }

  const nodes: NodeProto[] = [];
  const extra = new ExtraValues(index);
  const hiddenDims = ['batch_size', 'sequence_length', spec.dim];
  const graphInputs: ValueInfoProto[] = [];
  const io: OnnxDecoderStageIo = {
    kv: { ...layout.kv, past: ownPasts, present: layout.kv.present.slice(start, end) },
  };
  if (entry) {
    graphInputs.push(floatInfo(SHARD_IO.hiddenIn, hiddenDims));
    io.hiddenIn = SHARD_IO.hiddenIn;
    nodes.push(convert(SHARD_IO.hiddenIn, entry.residual, 'float32', layout.hiddenDtype));
    if (entry.normalized) {
      const boundary = index.nodes[index.producer.get(entry.residual)!]!;
      const [, , gamma, beta] = boundary.input ?? [];
      const zeros = extra.name('zeros_like_hidden');
      const shape = extra.name('hidden_shape');
      nodes.push({ opType: 'Shape', input: [entry.residual], output: [shape], name: shape });
      nodes.push({
        opType: 'ConstantOfShape',
        input: [shape],
        output: [zeros],
        name: zeros,
        attribute: [
          { name: 'value', type: AttributeType.TENSOR, t: zeroScalar(layout.hiddenDtype) },
        ],
      });
      // Same op, weights and epsilon as the node that ended the previous layer; the
      // residual already holds that node's bias, and adding zero changes no bit.
      const inputs =
        entry.normalized.replay === 'SkipLayerNormalization'
          ? [entry.residual, zeros, gamma ?? '', beta ?? '']
          : [entry.residual, zeros, gamma ?? ''];
      for (const name of inputs) if (index.initializers.has(name)) usedInitializers.add(name);
      nodes.push({
        opType: entry.normalized.replay,
        domain: MS_DOMAIN,
        name: `${entry.normalized.tensor}_replayed`,
        input: inputs.filter((name, i) => i < 3 || name),
        output: [entry.normalized.tensor],
        attribute: boundary.attribute ?? [],
      });
    }
  }
  for (const name of neededBiases)
    nodes.push(...attentionBiasNodes(biases.get(name)!, layout, extra));
  index.nodes.forEach((node, p) => {
    if (!keep.has(p)) return;
    const proxied = shapeProxies.get(p);
    if (proxied === undefined) nodes.push(node);
    else nodes.push(...shapeProxy(node, proxied, spec, extra, ownPasts));
  });
  if (exit) {
    nodes.push(convert(exit.residual, SHARD_IO.hiddenOut, layout.hiddenDtype, 'float32'));
    io.hiddenOut = SHARD_IO.hiddenOut;
  } else {
    io.logits = layout.logits;
  }

  for (const info of spec.model.graph!.input ?? []) {
    const name = info.name ?? '';
    if (usedInputs.has(name) || ownPasts.flat().includes(name)) graphInputs.push(info);
  }
  if (usedInputs.has(layout.inputIds.name)) io.inputIds = layout.inputIds;
  if (usedInputs.has(layout.positionIds.name)) io.positionIds = layout.positionIds;
  if (usedInputs.has(layout.attentionMask.name)) io.attentionMask = layout.attentionMask;
  const outputs = [
    ...(exit ? [floatInfo(SHARD_IO.hiddenOut, hiddenDims)] : [index.outputs.get(layout.logits)!]),
    ...io.kv.present.flat().map((name) => index.outputs.get(name)!),
  ];
  const initializerOrder = orderOfFirstUse(nodes, usedInitializers);
  const referenced = new Set(nodes.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]));
  const source = spec.model;
  const stage = onnx.ModelProto.create({
    irVersion: source.irVersion,
    opsetImport: source.opsetImport,
    producerName: spec.producer,
    domain: source.domain,
    modelVersion: source.modelVersion,
    docString:
      `layers [${start}, ${end}) of ${nLayers}, cut from ${source.producerName} ${source.producerVersion}`.trim(),
    metadataProps: source.metadataProps,
    functions: source.functions,
    graph: {
      name: `${source.graph?.name || 'decoder'}_layers_${start}_${end}`,
      node: nodes,
      initializer: [
        ...initializerOrder.map((name) => spec.place(index.initializers.get(name)!)),
        ...extra.initializers,
      ],
      input: graphInputs,
      output: outputs,
      valueInfo: (source.graph?.valueInfo ?? []).filter((v) => referenced.has(v.name ?? '')),
    },
  });
  return { onnx: onnx.ModelProto.encode(stage).finish(), io, initializers: initializerOrder };
}

/** Fresh value names and the small initializers the surgery adds. */
class ExtraValues implements ExtraValueSource {
  readonly initializers: TensorProto[] = [];
  #count = 0;

  constructor(readonly index: GraphIndex) {}

  name(hint: string): string {
    let name: string;
    do name = `swarmbee_${hint}_${this.#count++}`;
    while (this.index.producer.has(name) || this.index.initializers.has(name));
    return name;
  }

  ints(hint: string, values: number[], scalar = false): string {
    const data = BigInt64Array.from(values, BigInt);
    return this.tensor(hint, {
      dataType: DataType.INT64,
      dims: scalar ? [] : [values.length],
      rawData: new Uint8Array(data.buffer),
    });
  }

  tensor(hint: string, tensor: Omit<TensorProto, 'name'>): string {
    const name = this.name(hint);
    this.initializers.push({ ...tensor, name });
    return name;
  }
}

/**
 * A Shape node of an input this stage lacks, rebuilt from one it has: the token
 * ids' [batch, seq] are the hidden state's first two dims; another layer's past
 * has the same shape as this stage's first.
 */
function shapeProxy(
  node: NodeProto,
  input: string,
  spec: StageGraphSpec,
  extra: ExtraValues,
  ownPasts: string[][],
): NodeProto[] {
  const { layout } = spec;
  const pastLayer = layout.kv.past.findIndex((names) => names.includes(input));
  if (pastLayer >= 0) {
    const part = layout.kv.past[pastLayer]!.indexOf(input);
    return [{ ...node, input: [ownPasts[0]![part]!] }];
  }
  if (input !== layout.inputIds.name) {
    throw new ShardInvalidError(
      `layers [${spec.range.start}, ${spec.range.end}) need the shape of ${input}`,
    );
  }
  if (spec.layout.opset < 10)
    throw new OnnxGraphUnsupportedError(`rebuilding the shape of ${input} needs opset 10 or later`);
  const clamp = (v: number) => Math.min(2, Math.max(0, v < 0 ? v + 2 : v));
  const from = clamp(intAttribute(node, 'start') ?? 0);
  const to = clamp(intAttribute(node, 'end') ?? 2);
  const whole = extra.name('hidden_shape');
  return [
    { opType: 'Shape', name: whole, input: [SHARD_IO.hiddenIn], output: [whole] },
    {
      opType: 'Slice',
      name: `${node.output![0]}_from_hidden`,
      input: [
        whole,
        extra.ints('starts', [from]),
        extra.ints('ends', [to]),
        extra.ints('axes', [0]),
      ],
      output: [node.output![0]!],
    },
  ];
}

/** A Cast between the wire's float32 and the graph's own type, or an Identity when they agree. */
function convert(from: string, to: string, fromDtype: FloatDtype, toDtype: FloatDtype): NodeProto {
  return fromDtype === toDtype
    ? { opType: 'Identity', name: to, input: [from], output: [to] }
    : {
        opType: 'Cast',
        name: to,
        input: [from],
        output: [to],
        attribute: [
          {
            name: 'to',
            type: AttributeType.INT,
            i: toDtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT,
          },
        ],
      };
}

function floatInfo(name: string, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function zeroScalar(dtype: FloatDtype): TensorProto {
  return {
    dataType: dtype === 'float32' ? DataType.FLOAT : DataType.FLOAT16,
    dims: [1],
    rawData: new Uint8Array(dtype === 'float32' ? 4 : 2),
  };
}

function orderOfFirstUse(nodes: NodeProto[], used: Set<string>): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  for (const node of nodes) {
    for (const name of node.input ?? []) {
      if (used.has(name) && !seen.has(name)) {
        seen.add(name);
        order.push(name);
      }
    }
  }
  return order;
}
