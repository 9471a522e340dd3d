/**
 * Shards: the ONNX graph of one stage, for any layer range, built on demand
 * from a model dir. In process a shard reads the model's own `weights.bin`;
 * written out (for transfer to a worker, shard-files.ts) it carries just its own
 * weights. Llama-family shards are built from weights; shards of an imported ONNX
 * decoder are cut out of its graph (`onnx-decoder/`). `kind` tells them apart.
 */
import {
  InvalidArgumentError,
  type KvDtype,
  type LlamaConfig,
  type OnnxDecoderConfig,
  type OnnxDecoderStageIo,
  ShardInvalidError,
  StageLayoutError,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import { llamaTensorSpecs } from './llama-tensors.js';
import { findTensor, type LlamaModelDir, type ModelDir } from './model-dir.js';
import {
  buildLlamaShardGraph,
  type LocatedWeight,
  type ShardAttention,
} from './onnx/llama-shard-graph.js';
import type { OnnxDecoderModelDir } from './onnx-decoder/import.js';
import { buildOnnxDecoderShard } from './onnx-decoder/shard.js';

export const SHARD_GRAPH_FILE = 'model.onnx';
export const SHARD_WEIGHTS_FILE = 'weights.bin';
export const SHARD_MANIFEST_FILE = 'shard.json';
/** Bytes copied at a time from the model's weights into a written shard. */
export const SHARD_COPY_CHUNK_BYTES = 4 * 1024 * 1024;

/** A half-open layer range [start, end). */
export interface LayerRange {
  start: number;
  end: number;
}

interface ShardGraphBase {
  modelHash: string;
  layerStart: number;
  layerEnd: number;
  onnx: Uint8Array;
  /** Directory ONNX Runtime resolves the graph's external-data file names against. */
  externalDataDir: string;
}

/** A shard ready for an engine: the graph bytes plus where its external weights live. */
export interface LlamaShardGraph extends ShardGraphBase {
  kind: 'llama';
  config: LlamaConfig;
  /** Element type of the KV cache the graph takes and returns. Absent: float32. */
  kvDtype?: KvDtype;
  /** How the graph's layers attend, and so which KV inputs and outputs it has. Absent: decomposed. */
  attention?: ShardAttention;
  /** Adapters the graph serves unmerged, chosen per row by `adapter_ids`. Absent: none (no such input). */
  adapters?: number;
}

/** How a Llama shard is built. */
export interface ShardBuildOptions {
  /** KV-cache element type of the graph's past inputs and new outputs. Default `float32`. */
  kvDtype?: KvDtype;
  /** Largest slice of an fp32 LM head multiplied at once, bytes. Default `HEAD_CHUNK_BYTES` (64 MiB). */
  headChunkBytes?: number;
  /** How the layers attend (`fused` GroupQueryAttention or `decomposed` standard ops). */
  attention?: ShardAttention;
  /**
   * Context the shard serves, tokens: its RoPE tables hold this many positions and its
   * config's `maxSeqLen` says so (so an engine refuses any position beyond it, and the
   * shard's hashes cover the size). Default the model's whole context.
   */
  context?: number;
}

/** A stage cut out of an imported decoder: its IO follows the export, described by `io`. */
export interface OnnxDecoderShardGraph extends ShardGraphBase {
  kind: 'onnx-decoder';
  config: OnnxDecoderConfig;
  io: OnnxDecoderStageIo;
}

export type ShardGraph = LlamaShardGraph | OnnxDecoderShardGraph;

/**
 * Version of the shard graph contract (inputs, outputs, layouts). Shards built by
 * another version are rebuilt, never loaded.
 */
export const SHARD_FORMAT_VERSION = 2;

/** Recorded beside a written shard: what it is and the hashes that identify it. */
interface ShardManifestBase {
  format: 'swarmbee.shard';
  formatVersion: number;
  modelHash: string;
  modelName: string;
  layerStart: number;
  layerEnd: number;
  files: { name: string; bytes: number; sha256: string }[];
  /** sha256 over the files' hashes: the shard's content address. */
  shardId: string;
  createdBy: string;
}

export interface LlamaShardManifest extends ShardManifestBase {
  /** Absent in shards written before imported decoders existed: those are Llama shards. */
  kind?: 'llama';
  config: LlamaConfig;
  /** Absent in shards written before fp16 caches existed: float32. */
  kvDtype?: KvDtype;
  /**
   * LoRA adapters the shard serves unmerged, in slot order (a row's `adapter_ids` n ≥ 1 picks
   * the n-th); absent when it serves the base alone.
   */
  adapters?: { name: string; hash: string }[];
}

export interface OnnxDecoderShardManifest extends ShardManifestBase {
  kind: 'onnx-decoder';
  config: OnnxDecoderConfig;
  io: OnnxDecoderStageIo;
}

export type ShardManifest = LlamaShardManifest | OnnxDecoderShardManifest;

export function checkRange(config: { nLayers: number }, range: LayerRange): void {
  const { start, end } = range;
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(end) ||
    start < 0 ||
    end > config.nLayers ||
    start >= end
  ) {
    throw new StageLayoutError(
      `layer range [${start}, ${end}) is not a non-empty range within the model's ${config.nLayers} layers`,
    );
  }
}

/** Splits `nLayers` into `stages` contiguous ranges whose sizes differ by at most one. */
export function evenRanges(nLayers: number, stages: number): LayerRange[] {
  if (!Number.isInteger(stages) || stages < 1 || stages > nLayers) {
    throw new StageLayoutError(
      `cannot split ${nLayers} layers into ${stages} stages: choose between 1 and ${nLayers}`,
    );
  }
  const ranges: LayerRange[] = [];
  let start = 0;
  for (let s = 0; s < stages; s++) {
    const size = Math.floor(nLayers / stages) + (s < nLayers % stages ? 1 : 0);
    ranges.push({ start, end: start + size });
    start += size;
  }
  return ranges;
}

/** Names of the weight tensors a shard for `range` needs, in storage order. */
export function shardTensorNames(config: LlamaConfig, range: LayerRange): string[] {
  const names = llamaTensorSpecs(config)
    .filter((s) =>
      typeof s.part === 'number'
        ? s.part >= range.start && s.part < range.end
        : s.part === 'embedding'
          ? range.start === 0
          : range.end === config.nLayers,
    )
    .map((s) => s.name);
  if (range.end === config.nLayers && config.sharedClassifier && range.start !== 0)
    names.unshift('tok_embeddings');
  return names;
}

/**
 * The tensors stored for a weight: itself, plus its scales and zero points when it is
 * quantized (adjacent in `weights.bin`, in this order).
 */
export function storedTensorNames(dir: LlamaModelDir, name: string): string[] {
  const q = findTensor(dir, name).quantization;
  return q ? [name, q.scales, q.zeroPoints] : [name];
}

/** Where each stored tensor sits in a written shard's `weights.bin`: byte offset and length. */
export interface ShardWeightLayout {
  /** Stored tensor names in file order. */
  names: string[];
  placed: Map<string, { offset: number; bytes: number }>;
  /** The file's length, bytes. */
  totalBytes: number;
}

/**
 * The layout of a written shard's weights file for `range`: the stored tensors in
 * storage order, each 4-byte aligned (quantized codes and zero points are bytes; the
 * fp32 tensors after them stay aligned). `writeShard` writes exactly this, so a graph
 * built later for the same shard (a training stage's) can locate its weights in it.
 */
export function shardWeightLayout(
  dir: LlamaModelDir,
  config: LlamaConfig,
  range: LayerRange,
): ShardWeightLayout {
  const names = shardTensorNames(config, range).flatMap((n) => storedTensorNames(dir, n));
  const placed = new Map<string, { offset: number; bytes: number }>();
  let offset = 0;
  for (const name of names) {
    offset += (4 - (offset % 4)) % 4;
    const { bytes } = findTensor(dir, name);
    placed.set(name, { offset, bytes });
    offset += bytes;
  }
  return { names, placed, totalBytes: offset };
}

/** A weight located through `where` for each of its stored tensors (see {@link storedTensorNames}). */
export function locateWeight(
  dir: LlamaModelDir,
  name: string,
  where: (tensor: string) => LocatedWeight['where'],
): LocatedWeight {
  const tensor = findTensor(dir, name);
  const located: LocatedWeight = { dims: tensor.shape, where: where(name) };
  const q = tensor.quantization;
  if (q) {
    located.quantization = {
      bits: q.bits,
      blockSize: q.blockSize,
      shape: q.shape,
      activations: q.activations,
      scales: { dims: findTensor(dir, q.scales).shape, where: where(q.scales) },
      zeroPoints: { dims: findTensor(dir, q.zeroPoints).shape, where: where(q.zeroPoints) },
    };
  }
  return located;
}

/** The shard for `range`, reading weights in place from the model dir. */
export function buildShard(
  dir: ModelDir,
  range: LayerRange,
  options: ShardBuildOptions = {},
): ShardGraph {
  if (dir.manifest.architecture === 'onnx-decoder') {
    refuseLlamaOnlyOptions(options);
    return buildOnnxDecoderShard(dir as OnnxDecoderModelDir, range);
  }
  return buildLlamaShard(dir as LlamaModelDir, range, options.kvDtype ?? 'float32', options);
}

/** An imported decoder's cache keeps the export's element type, and its graph its context. */
export function refuseLlamaOnlyOptions(options: ShardBuildOptions): void {
  if ((options.kvDtype ?? 'float32') !== 'float32')
    throw new ShardInvalidError(
      `kvDtype ${options.kvDtype} is for SwarmBee's Llama shards; an imported ONNX decoder keeps its export's KV type`,
    );
  if (options.context !== undefined)
    throw new ShardInvalidError(
      `a shard context (${options.context} tokens) is for SwarmBee's Llama shards; an imported ONNX decoder keeps its export's position tables`,
    );
}

/**
 * The config a shard serving `context` tokens is built with: the model's, its `maxSeqLen`
 * cut to `context` (the rows of its RoPE tables). A context beyond the model's is refused.
 */
export function servedConfig(config: LlamaConfig, context: number | undefined): LlamaConfig {
  if (context === undefined || context === config.maxSeqLen) return config;
  if (!Number.isSafeInteger(context) || context < 1 || context > config.maxSeqLen)
    throw new InvalidArgumentError(
      `a shard context of ${context} tokens must be a positive integer no larger than the model's ${config.maxSeqLen}`,
    );
  return { ...config, maxSeqLen: context };
}

function buildLlamaShard(
  dir: LlamaModelDir,
  range: LayerRange,
  kvDtype: KvDtype,
  options: ShardBuildOptions = {},
): LlamaShardGraph {
  const config = servedConfig(dir.manifest.config, options.context);
  checkRange(config, range);
  const onnx = buildLlamaShardGraph({
    config,
    layerStart: range.start,
    layerEnd: range.end,
    kvDtype,
    ...(options.headChunkBytes === undefined ? {} : { headChunkBytes: options.headChunkBytes }),
    ...(options.attention === undefined ? {} : { attention: options.attention }),
    producer: `swarmbee ${SWARMBEE_VERSION}`,
    locate: (name) =>
      locateWeight(dir, name, (stored) => {
        const tensor = findTensor(dir, stored);
        return {
          location: dir.manifest.weights.file,
          offset: tensor.offset,
          length: tensor.bytes,
        };
      }),
  });
  return {
    kind: 'llama',
    modelHash: dir.manifest.modelHash,
    config,
    layerStart: range.start,
    layerEnd: range.end,
    onnx,
    externalDataDir: dir.path,
    ...(kvDtype === 'float32' ? {} : { kvDtype }),
    ...(options.attention === 'fused' ? { attention: 'fused' as const } : {}),
  };
}
