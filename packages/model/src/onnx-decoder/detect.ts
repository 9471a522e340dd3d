/**
 * Finds the layers of a decoder export. The KV IO names the layers (past_L is
 * read by layer L); the cuts between them come from the graph's structure: the
 * token flow is a chain of *dominators* (nodes every token's influence passes
 * through), and in a residual network the dominators between the attention of
 * layer L-1 and that of layer L are the residual adds. The cut in front of layer
 * L is the last dominator whose values do not yet depend on past_L — the node
 * that ends layer L-1. That holds for explicit Add residuals (Optimum) and for
 * onnxruntime's fused Skip*LayerNormalization alike, whatever the op names.
 */
import {
  type DecoderFloatDtype,
  type OnnxAttentionBias,
  type OnnxCutReplay,
  OnnxGraphUnsupportedError,
  type OnnxLayerCut,
  OnnxLayersNotFoundError,
} from '@swarmbee/core';
import { findAttentionBiases } from './attention-bias.js';
import { type DecoderIo, recognizeDecoderIo } from './decoder-io.js';
import {
  type GraphIndex,
  indexGraph,
  inferElementTypes,
  tokenDominators,
  valueSources,
} from './graph-index.js';
import {
  intAttribute,
  type ModelProto,
  MS_DOMAIN,
  onnx,
  tensorByteLength,
  tensorDims,
} from './proto.js';

/** Which part of the model a node or initializer belongs to. */
export type Part = 'embedding' | 'head' | number;

export interface DetectedDecoder {
  index: GraphIndex;
  io: DecoderIo;
  nLayers: number;
  dim: number;
  nHeads: number;
  vocabSize: number;
  /** Rows of a learned position table, when the export has one: the context it was trained for. */
  positionTableRows?: number;
  hiddenDtype: DecoderFloatDtype;
  weightDtype: DecoderFloatDtype;
  cuts: OnnxLayerCut[];
  tiedEmbedding: boolean;
  /** Parts whose nodes read each initializer (directly or through constant-only nodes). */
  initializerParts: Map<string, Part[]>;
  attentionBiases: OnnxAttentionBias[];
  patterns: string[];
}

/** Fused ops that add the residual and normalise for the next layer; output 3 is the sum. */
const FUSED_SKIP_NORMS: readonly OnnxCutReplay[] = [
  'SkipLayerNormalization',
  'SkipSimplifiedLayerNormalization',
];

/** Attention ops whose cache contract SwarmBee cannot feed, and why. */
const UNSUPPORTED_ATTENTION: Record<string, string> = {
  GroupQueryAttention:
    'it reads each row’s length from the sum of the attention mask, so a cache with masked slots (padding, spare capacity) would be misread',
};

export function detectDecoder(model: ModelProto): DetectedDecoder {
  const graph = model.graph;
  if (!graph) throw new OnnxLayersNotFoundError('the file holds no graph');
  const index = indexGraph(graph);
  for (const node of index.nodes) {
    const why = UNSUPPORTED_ATTENTION[node.opType ?? ''];
    if (why)
      throw new OnnxGraphUnsupportedError(
        `node ${node.name || '(unnamed)'} is a ${node.opType}, which SwarmBee cannot feed: ${why}`,
      );
  }
  const io = recognizeDecoderIo(index);
  const nLayers = io.kv.past.length;
  const sources = new Map<string, bigint>([[io.inputIds.name, 1n]]);
  io.kv.past.forEach((names, layer) => {
    for (const name of names) sources.set(name, 1n << BigInt(layer + 1));
  });
  const masks = valueSources(index, sources);
  const inToken = masks.map((m) => (m & 1n) !== 0n);
  const { idom } = tokenDominators(index, inToken, io.inputIds.name);
  const logitsNode = index.producer.get(io.logits);
  if (logitsNode === undefined || !inToken[logitsNode])
    throw new OnnxLayersNotFoundError(
      `the output ${io.logits} does not depend on ${io.inputIds.name}`,
    );

  // The dominator chain of the logits, from the token input to the logits' producer.
  const chain: number[] = [];
  for (let v = logitsNode; v >= 0; v = idom[v]!) chain.unshift(v);
  const boundaryIndex = findBoundaries(chain, masks, nLayers, index);

  const chainIndex = new Map(chain.map((v, i) => [v, i]));
  const headStart = headStartIndex(chain, boundaryIndex, index);
  const partOf = (v: number): Part | undefined => {
    if (!inToken[v]) return undefined;
    if (v === logitsNode) return 'head';
    let u = idom[v]!;
    while (u >= 0 && !chainIndex.has(u)) u = idom[u]!;
    const position = u >= 0 ? chainIndex.get(u)! : -1;
    if (headStart !== undefined && position >= headStart) return 'head';
    let part: Part = 'embedding';
    boundaryIndex.forEach((at, layer) => {
      if (at <= position) part = layer;
    });
    return part;
  };
  const parts = index.nodes.map((_, v) => partOf(v));
  io.kv.present.forEach((names, layer) => {
    for (const name of names) {
      const p = index.producer.get(name);
      if (p === undefined || parts[p] !== layer) {
        throw new OnnxLayersNotFoundError(
          `${name} is not produced inside layer ${layer} as the residual chain places it; the layers do not follow one another`,
        );
      }
    }
  });

  const types = inferElementTypes(index, graph.valueInfo ?? []);
  const cuts = boundaryIndex.slice(1).map((at, i) => describeCut(index, chain[at]!, i + 1, parts));
  const hiddenType = cuts[0] ? types.get(cuts[0].residual) : floatTypeOf(io.kv.dtype);
  const hiddenDtype = floatDtype(hiddenType);
  if (!hiddenDtype) {
    throw new OnnxGraphUnsupportedError(
      `the residual tensor ${cuts[0]?.residual} is not float32 or float16 (ONNX type ${hiddenType})`,
    );
  }
  const initializerParts = attributeInitializers(index, parts);
  const shape = modelShape(index, io, initializerParts, parts);
  const weightDtype = dominantFloat(index);
  const attentionBiases = findAttentionBiases(index, io, types);
  const patterns = [
    `KV: ${io.naming}`,
    `layer ends: ${[...new Set(cuts.map((c) => c.boundaryOp))].join(', ') || '(one layer)'}${
      cuts.some((c) => c.normalized)
        ? ' (fused with the next layer’s norm, replayed after a cut)'
        : ''
    }`,
    `embedding ends at: ${index.nodes[chain[boundaryIndex[0]!]!]!.opType}`,
    `attention: ${attentionOps(index, parts).join(', ')}`,
    ...(attentionBiases.length > 0
      ? [
          `attention bias from the mask, rebuilt per stage: ${attentionBiases.map((b) => b.tensor).join(', ')}`,
        ]
      : []),
  ];
  return {
    index,
    io,
    nLayers,
    hiddenDtype,
    weightDtype,
    cuts,
    initializerParts,
    attentionBiases,
    patterns,
    ...shape,
  };
}

/** For each layer, the chain position of the last node whose values do not depend on its past. */
function findBoundaries(
  chain: number[],
  masks: bigint[],
  nLayers: number,
  index: GraphIndex,
): number[] {
  const at: number[] = [];
  for (let layer = 0; layer < nLayers; layer++) {
    const bit = 1n << BigInt(layer + 1);
    const depends = chain.map((v) => (masks[v]! & bit) !== 0n);
    const first = depends.indexOf(true);
    if (first < 0) {
      throw new OnnxLayersNotFoundError(
        `the logits do not depend on layer ${layer}'s past through one chain of nodes every token passes; ` +
          'looked for a residual stream (an Add or a fused Skip*LayerNormalization) between the layers',
      );
    }
    if (
      first === 0 ||
      depends.slice(first).includes(false) ||
      (layer > 0 && first - 1 <= at[layer - 1]!)
    ) {
      const before = layer === 0 ? 'the embedding' : `layer ${layer - 1}`;
      const shown = chain.slice(0, 12).map((v) => index.nodes[v]!.opType);
      throw new OnnxLayersNotFoundError(
        `no node between ${before} and layer ${layer} carries every token's state ` +
          `(looked for the residual add ending ${before} on the token flow's dominator chain: ` +
          `${shown.join(' -> ')}${chain.length > 12 ? ' -> ...' : ''})`,
      );
    }
    at.push(first - 1);
  }
  return at;
}

/**
 * Where the head begins on the chain: identical layers repeat the chain's stride,
 * so the node one stride after the last layer's start (if it is the same op) ends
 * the last layer. Otherwise only the logits' producer counts as the head.
 */
function headStartIndex(chain: number[], at: number[], index: GraphIndex): number | undefined {
  if (at.length < 2) return undefined;
  const stride = at.at(-1)! - at.at(-2)!;
  const end = at.at(-1)! + stride;
  const op = (i: number) => index.nodes[chain[i]!]?.opType;
  return end < chain.length - 1 && op(end) === op(at.at(-1)!) ? end + 1 : undefined;
}

function describeCut(
  index: GraphIndex,
  boundary: number,
  layer: number,
  parts: (Part | undefined)[],
): OnnxLayerCut {
  const node = index.nodes[boundary]!;
  const own = parts[boundary];
  const crossing = (node.output ?? []).filter(
    (out) =>
      out &&
      (index.consumers.get(out) ?? []).some((c) => parts[c] === undefined || parts[c] !== own),
  );
  const op = node.opType ?? '';
  if (crossing.length === 1) return { layer, residual: crossing[0]!, boundaryOp: op };
  const fused = FUSED_SKIP_NORMS.find((f) => f === op && node.domain === MS_DOMAIN);
  const [normalized, , , sum] = node.output ?? [];
  if (fused && sum && crossing.every((c) => c === normalized || c === sum)) {
    const cut: OnnxLayerCut = { layer, residual: sum, boundaryOp: op };
    if (normalized && crossing.includes(normalized))
      cut.normalized = { tensor: normalized, replay: fused };
    return cut;
  }
  throw new OnnxLayersNotFoundError(
    `the node ending layer ${layer - 1} (${node.name || op}) hands ${crossing.length} tensors to layer ${layer} ` +
      `(${crossing.join(', ')}); SwarmBee cuts where one residual tensor crosses, or after a fused ${FUSED_SKIP_NORMS.join(' / ')}`,
  );
}

/** Parts whose token-flow nodes read each initializer, through constant-only nodes (Cast, DequantizeLinear, ...). */
function attributeInitializers(
  index: GraphIndex,
  parts: (Part | undefined)[],
): Map<string, Part[]> {
  const out = new Map<string, Part[]>();
  for (const name of index.initializers.keys()) {
    const found = new Set<Part>();
    const seen = new Set<number>();
    const queue = [...(index.consumers.get(name) ?? [])];
    while (queue.length > 0) {
      const v = queue.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const part = parts[v];
      if (part !== undefined) found.add(part);
      else
        for (const o of index.nodes[v]!.output ?? []) queue.push(...(index.consumers.get(o) ?? []));
    }
    out.set(name, [...found]);
  }
  return out;
}

function modelShape(
  index: GraphIndex,
  io: DecoderIo,
  initializerParts: Map<string, Part[]>,
  parts: (Part | undefined)[],
): {
  dim: number;
  nHeads: number;
  vocabSize: number;
  tiedEmbedding: boolean;
  positionTableRows?: number;
} {
  const embedding = [...initializerParts]
    .filter(([, p]) => p.includes('embedding'))
    .map(([name]) => ({ name, dims: tensorDims(index.initializers.get(name)!) }))
    .filter((t) => t.dims.length === 2);
  const logitsDims = index.outputs.get(io.logits)?.type?.tensorType?.shape?.dim ?? [];
  const declaredVocab = Number(logitsDims.at(-1)?.dimValue ?? 0);
  const byRows = [...embedding].sort((a, b) => b.dims[0]! - a.dims[0]!);
  const table = byRows.find((t) => (declaredVocab ? t.dims[0] === declaredVocab : true));
  if (!table) {
    throw new OnnxLayersNotFoundError(
      `cannot find the token embedding: looked for a [vocab, dim] initializer read before layer 0${declaredVocab ? ` with ${declaredVocab} rows` : ''}`,
    );
  }
  const [vocabSize, dim] = table.dims as [number, number];
  const positions = embedding.find((t) => t !== table && t.dims[1] === dim);
  const tiedEmbedding = initializerParts.get(table.name)!.includes('head');
  let nHeads = io.kv.kvHeads;
  for (let v = 0; v < index.nodes.length; v++) {
    const heads = parts[v] === 0 ? intAttribute(index.nodes[v]!, 'num_heads') : undefined;
    if (heads) {
      nHeads = heads;
      break;
    }
  }
  const shape = { dim, nHeads, vocabSize, tiedEmbedding };
  return positions ? { ...shape, positionTableRows: positions.dims[0]! } : shape;
}

function attentionOps(index: GraphIndex, parts: (Part | undefined)[]): string[] {
  const ops = new Set<string>();
  index.nodes.forEach((node, v) => {
    if (parts[v] === 0 && /Attention/.test(node.opType ?? '')) ops.add(node.opType!);
  });
  return ops.size > 0 ? [...ops] : ['decomposed (MatMul, Softmax)'];
}

const { DataType } = onnx.TensorProto;

function floatDtype(type: number | undefined): DecoderFloatDtype | undefined {
  return type === DataType.FLOAT ? 'float32' : type === DataType.FLOAT16 ? 'float16' : undefined;
}

function floatTypeOf(dtype: DecoderFloatDtype): number {
  return dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
}

/** float16 when half-precision initializers outweigh single-precision ones. */
function dominantFloat(index: GraphIndex): DecoderFloatDtype {
  let half = 0;
  let single = 0;
  for (const t of index.initializers.values()) {
    if (t.dataType === DataType.FLOAT16) half += tensorByteLength(t);
    if (t.dataType === DataType.FLOAT) single += tensorByteLength(t);
  }
  return half > single ? 'float16' : 'float32';
}
