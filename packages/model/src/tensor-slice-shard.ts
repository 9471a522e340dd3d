/**
 * The shard of one tensor-parallel member: a layer range's segment graphs over the
 * member's slice (see `onnx/tensor-slice-graph.ts`), built from a model dir. Weights the
 * slice cuts (q/k/v rows of its heads, output-projection columns, gate/up rows and down
 * columns of its feed-forward columns) are copied out of `weights.bin` into the graphs;
 * norms, the embedding and the LM head stay external, read in place.
 */
import {
  headDim,
  type KvDtype,
  type LlamaConfig,
  SWARMBEE_VERSION,
  TensorSplitError,
} from '@swarmbee/core';
import { CLASSIFIER, FINAL_NORM, layerTensor, TOKEN_EMBEDDING } from './llama-tensors.js';
import { findTensor, type LlamaModelDir, type ModelDir, readTensor } from './model-dir.js';
import type { LocatedWeight } from './onnx/decoder-blocks.js';
import { HEAD_CHUNK_BYTES, SHARD_OPSET } from './onnx/llama-shard-graph.js';
import {
  buildAttentionSegment,
  buildEmbeddingSegment,
  buildFeedForwardSegment,
  buildHeadSegment,
  type SliceSegmentSpec,
  sliceConfig,
} from './onnx/tensor-slice-graph.js';
import { checkRange, type LayerRange, locateWeight, shardTensorNames } from './shard.js';
import { type IndexRange, splitTensors, type TensorSlice } from './tensor-slice.js';

/** One layer's two segment graphs. */
export interface LayerSegments {
  attention: Uint8Array;
  feedForward: Uint8Array;
}

/** What a tensor-parallel member runs for its layer range. */
export interface TensorSliceShard {
  kind: 'llama-slice';
  modelHash: string;
  /** The whole model's config; the member's is `sliceConfig(config, slice.kvHeads, slice.columns)`. */
  config: LlamaConfig;
  layerStart: number;
  layerEnd: number;
  slice: TensorSlice;
  /** Leader of the first stage: token ids → hidden state. */
  embedding?: Uint8Array;
  layers: LayerSegments[];
  /**
   * Last stage: final norm and LM head — on the leader, or, when the group splits its head
   * by vocabulary (`slice.vocab`), on every member over its rows.
   */
  head?: Uint8Array;
  /** Directory onnxruntime resolves the graphs' external-data file names against. */
  externalDataDir: string;
}

export interface SliceShardOptions {
  /** Largest slice of an fp32 LM head multiplied at once, bytes. Default `HEAD_CHUNK_BYTES` (64 MiB). */
  headChunkBytes?: number;
  /** KV-cache element type; tensor-parallel members keep `float32` only (anything else is refused). */
  kvDtype?: KvDtype;
}

/** The shard of member `slice.rank` for layers `range`, reading unsliced weights in place. */
export async function buildSliceShard(
  dir: ModelDir,
  range: LayerRange,
  slice: TensorSlice,
  options: SliceShardOptions = {},
): Promise<TensorSliceShard> {
  const llama = checkSliceShard(dir, range, slice, options);
  const { config } = llama.manifest;
  const segments = await buildSegments(llama, range, slice, options, (name) =>
    locateWeight(llama, name, (stored) => {
      const tensor = findTensor(llama, stored);
      return { location: llama.manifest.weights.file, offset: tensor.offset, length: tensor.bytes };
    }),
  );
  return {
    kind: 'llama-slice',
    modelHash: llama.manifest.modelHash,
    config,
    layerStart: range.start,
    layerEnd: range.end,
    slice,
    ...segments,
    externalDataDir: llama.path,
  };
}

/** The graphs of a member shard; the check of the model and slice is the caller's. */
export type SliceSegments = Pick<TensorSliceShard, 'embedding' | 'layers' | 'head'>;

/** Whether member `slice` of a group running `range` computes (some of) the LM head. */
export function holdsHead(config: LlamaConfig, range: LayerRange, slice: TensorSlice): boolean {
  return range.end === config.nLayers && (slice.rank === 0 || slice.vocab !== undefined);
}

/** The LM head's weight: the classifier, or the token embedding where the two are tied. */
export function headTensorName(config: LlamaConfig): string {
  return config.sharedClassifier ? TOKEN_EMBEDDING : CLASSIFIER;
}

/** Rows `rows` of an fp32 [rows, width] weight, located in place (no copy). */
export function weightRows(located: LocatedWeight, rows: IndexRange): LocatedWeight {
  const [, width] = located.dims as [number, number];
  const count = rows.end - rows.start;
  if (located.quantization)
    throw new TensorSplitError('a quantized LM head cannot be split by vocabulary');
  if (located.data)
    return {
      dims: [count, width],
      data: located.data.subarray(rows.start * width, rows.end * width),
    };
  const where = located.where!;
  const rowBytes = width * Float32Array.BYTES_PER_ELEMENT;
  return {
    dims: [count, width],
    where: { ...where, offset: where.offset + rows.start * rowBytes, length: count * rowBytes },
  };
}

/**
 * Builds a member's segments: weights the slice cuts go into the graphs, the others are
 * found by `locateUnsliced` (in the model dir, or in a written shard's own weights). A
 * member's rows of a head split by vocabulary are `locateHeadRows`'s (default: cut out of
 * the whole head `locateUnsliced` finds).
 */
export async function buildSegments(
  dir: LlamaModelDir,
  range: LayerRange,
  slice: TensorSlice,
  options: SliceShardOptions,
  locateUnsliced: (name: string) => LocatedWeight,
  locateHeadRows: (name: string, rows: IndexRange) => LocatedWeight = (name, rows) =>
    weightRows(locateUnsliced(name), rows),
): Promise<SliceSegments> {
  const { config } = dir.manifest;
  const sliced = await slicedWeights(dir, range, slice);
  const spec: SliceSegmentSpec = {
    config: sliceConfig(config, slice.kvHeads, slice.columns),
    kvDtype: 'float32',
    producer: `swarmbee ${SWARMBEE_VERSION}`,
    opset: SHARD_OPSET,
    locate: (name) => sliced.get(name) ?? locateUnsliced(name),
  };
  const layers: LayerSegments[] = [];
  for (let layer = range.start; layer < range.end; layer++)
    layers.push({
      attention: buildAttentionSegment(spec, layer),
      feedForward: buildFeedForwardSegment(spec, layer),
    });
  const segments: SliceSegments = { layers };
  if (slice.rank === 0 && range.start === 0) segments.embedding = buildEmbeddingSegment(spec);
  if (holdsHead(config, range, slice)) {
    const { vocab } = slice;
    const headSpec: SliceSegmentSpec = vocab
      ? {
          ...spec,
          config: { ...spec.config, vocabSize: vocab.end - vocab.start },
          locate: (name) =>
            name === headTensorName(config) ? locateHeadRows(name, vocab) : spec.locate(name),
        }
      : spec;
    segments.head = buildHeadSegment(headSpec, options.headChunkBytes ?? HEAD_CHUNK_BYTES);
  }
  return segments;
}

/**
 * Names of the weights a member reads whole (norms; the leader's embedding, and its head
 * unless the group splits the head: a member's rows of it are not read whole).
 */
export function unslicedTensorNames(
  config: LlamaConfig,
  range: LayerRange,
  slice: TensorSlice,
): string[] {
  const names: string[] = [];
  if (slice.rank === 0 && range.start === 0) names.push(TOKEN_EMBEDDING);
  for (let layer = range.start; layer < range.end; layer++) {
    names.push(layerTensor.attnNorm(layer));
    if (config.qkNorm) names.push(layerTensor.qNorm(layer), layerTensor.kNorm(layer));
    names.push(layerTensor.ffnNorm(layer));
  }
  if (holdsHead(config, range, slice)) {
    names.push(FINAL_NORM);
    const head = headTensorName(config);
    if (!slice.vocab && !names.includes(head)) names.push(head);
  }
  return names;
}

/** Checks a model dir and slice before a member shard is built or written. */
export function checkSliceShard(
  dir: ModelDir,
  range: LayerRange,
  slice: TensorSlice,
  options: SliceShardOptions,
): LlamaModelDir {
  if (dir.manifest.architecture === 'onnx-decoder') refuseImportedDecoder();
  const llama = dir as LlamaModelDir;
  checkRange(llama.manifest.config, range);
  checkSlice(llama.manifest.config, slice);
  refuseUnsupported(llama, range, options);
  return llama;
}

export interface GroupShardOptions extends SliceShardOptions {
  /** Split the LM head by vocabulary across the members (see `splitTensors`); default false. */
  splitVocab?: boolean;
}

/** The shards of every member of a group running `range`, split in proportion to `speeds` (rank order). */
export async function buildGroupShards(
  dir: ModelDir,
  range: LayerRange,
  speeds: readonly number[],
  options: GroupShardOptions = {},
): Promise<TensorSliceShard[]> {
  if (dir.manifest.architecture === 'onnx-decoder') refuseImportedDecoder();
  const slices = splitTensors((dir as LlamaModelDir).manifest.config, {
    weights: speeds,
    ...(options.splitVocab ? { splitVocab: true } : {}),
  });
  return Promise.all(slices.map((slice) => buildSliceShard(dir, range, slice, options)));
}

/** A slice must lie within the model's heads and columns, and its rank within its degree. */
function checkSlice(config: LlamaConfig, slice: TensorSlice): void {
  const { kvHeads, columns, rank, degree } = slice;
  const within = (r: { start: number; end: number }, n: number) =>
    Number.isInteger(r.start) &&
    Number.isInteger(r.end) &&
    r.start >= 0 &&
    r.start < r.end &&
    r.end <= n;
  if (
    !(
      Number.isInteger(degree) &&
      degree >= 1 &&
      Number.isInteger(rank) &&
      rank >= 0 &&
      rank < degree
    )
  )
    throw new TensorSplitError(`rank ${rank} is not a member of a group of ${degree}`);
  if (!within(kvHeads, config.nKvHeads))
    throw new TensorSplitError(
      `KV heads [${kvHeads.start}, ${kvHeads.end}) are not a non-empty range of the model's ${config.nKvHeads}`,
    );
  if (!within(columns, config.hiddenDim))
    throw new TensorSplitError(
      `feed-forward columns [${columns.start}, ${columns.end}) are not a non-empty range of the model's ${config.hiddenDim}`,
    );
  const { vocab } = slice;
  if (vocab !== undefined && !within(vocab, config.vocabSize))
    throw new TensorSplitError(
      `vocabulary rows [${vocab.start}, ${vocab.end}) are not a non-empty range of the model's ${config.vocabSize}`,
    );
}

function refuseImportedDecoder(): never {
  throw new TensorSplitError(
    'tensor-parallel slices are built from weights; an imported ONNX decoder cannot be split by heads',
  );
}

/** What the member graphs do not carry yet is refused by name, never built wrong. */
function refuseUnsupported(
  dir: LlamaModelDir,
  range: LayerRange,
  options: SliceShardOptions,
): void {
  const { config } = dir.manifest;
  if ((options.kvDtype ?? 'float32') !== 'float32')
    throw new TensorSplitError(
      `tensor-parallel members keep a float32 KV cache; kvDtype ${options.kvDtype} is not supported`,
    );
  if (config.postNorms)
    throw new TensorSplitError(
      'post-norms (Gemma 3) normalise the whole attention and feed-forward outputs, which a member holds only a part of; tensor parallelism does not support them yet',
    );
  for (const name of shardTensorNames(config, range)) {
    const q = findTensor(dir, name).quantization;
    if (q)
      throw new TensorSplitError(
        `${name} is int${q.bits}-quantized; tensor-parallel slices are built from fp32 weights only`,
      );
  }
}

/** The weights a slice cuts, as inline tensors, by canonical name. */
async function slicedWeights(
  dir: LlamaModelDir,
  range: LayerRange,
  slice: TensorSlice,
): Promise<Map<string, LocatedWeight>> {
  const { config } = dir.manifest;
  const { dim, nHeads, nKvHeads, hiddenDim } = config;
  const hd = headDim(config);
  const group = nHeads / nKvHeads;
  const q = { start: slice.kvHeads.start * group * hd, end: slice.kvHeads.end * group * hd };
  const kv = { start: slice.kvHeads.start * hd, end: slice.kvHeads.end * hd };
  const k = { start: nHeads * hd + kv.start, end: nHeads * hd + kv.end };
  const v = { start: (nHeads + nKvHeads) * hd + kv.start, end: (nHeads + nKvHeads) * hd + kv.end };
  const { columns } = slice;
  const up = { start: hiddenDim + columns.start, end: hiddenDim + columns.end };
  const out = new Map<string, LocatedWeight>();
  for (let layer = range.start; layer < range.end; layer++) {
    const wqkv = await readTensor(dir, layerTensor.wqkv(layer));
    out.set(layerTensor.wqkv(layer), pickRows(wqkv, dim, [q, k, v]));
    if (config.qkvBias) {
      const bqkv = await readTensor(dir, layerTensor.bqkv(layer));
      const rows = pickRows(bqkv, 1, [q, k, v]);
      out.set(layerTensor.bqkv(layer), { dims: [rows.dims[0]!], data: rows.data! });
    }
    const wo = await readTensor(dir, layerTensor.wo(layer));
    out.set(layerTensor.wo(layer), pickColumns(wo, dim, nHeads * hd, q));
    const w13 = await readTensor(dir, layerTensor.w13(layer));
    out.set(layerTensor.w13(layer), pickRows(w13, dim, [columns, up]));
    const w2 = await readTensor(dir, layerTensor.w2(layer));
    out.set(layerTensor.w2(layer), pickColumns(w2, dim, hiddenDim, columns));
  }
  return out;
}

/** Rows `ranges` (in order) of a [rows, width] matrix, as a new [Σ, width] tensor. */
function pickRows(
  values: Float32Array,
  width: number,
  ranges: readonly { start: number; end: number }[],
): LocatedWeight {
  const count = ranges.reduce((n, r) => n + r.end - r.start, 0);
  const data = new Float32Array(count * width);
  let at = 0;
  for (const r of ranges) {
    data.set(values.subarray(r.start * width, r.end * width), at);
    at += (r.end - r.start) * width;
  }
  return { dims: [count, width], data };
}

/** Columns `range` of a [rows, width] matrix, as a new [rows, range] tensor. */
function pickColumns(
  values: Float32Array,
  rows: number,
  width: number,
  range: { start: number; end: number },
): LocatedWeight {
  const count = range.end - range.start;
  const data = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++)
    data.set(values.subarray(r * width + range.start, r * width + range.end), r * count);
  return { dims: [rows, count], data };
}
