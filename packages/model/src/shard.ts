/**
 * Shards: the ONNX graph of one stage, for any layer range, built on demand
 * from a model dir. In process a shard reads the model's own `weights.bin`;
 * written out (for transfer to a worker) it carries just its own weights.
 * Llama-family shards are built from weights; shards of an imported ONNX
 * decoder are cut out of its graph (`onnx-decoder/`). `kind` tells them apart.
 */
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterUnsupportedError,
  KV_DTYPE_BYTES,
  type KvDtype,
  type LlamaConfig,
  type OnnxDecoderConfig,
  type OnnxDecoderStageIo,
  ShardInvalidError,
  StageLayoutError,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import { sha256 } from './hash.js';
import { llamaTensorSpecs } from './llama-tensors.js';
import type { LoraAdapter } from './lora/adapter.js';
import {
  adaptedModelHash,
  adapterHash,
  mergeModules,
  modulesByTensor,
  refuseQuantizedBase,
} from './lora/merge-tensor.js';
import { findTensor, type LlamaModelDir, type ModelDir, readTensor } from './model-dir.js';
import {
  buildLlamaShardGraph,
  type LocatedWeight,
  type ShardAttention,
} from './onnx/llama-shard-graph.js';
import type { OnnxDecoderModelDir } from './onnx-decoder/import.js';
import { buildOnnxDecoderShard, writeOnnxDecoderShard } from './onnx-decoder/shard.js';
import { noProgress, type ProgressFn } from './progress.js';
import { StagingDir } from './staging-dir.js';

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
}

/** How a Llama shard is built. */
export interface ShardBuildOptions {
  /** KV-cache element type of the graph's past inputs and new outputs. Default `float32`. */
  kvDtype?: KvDtype;
  /** Largest slice of an fp32 LM head multiplied at once, bytes. Default `HEAD_CHUNK_BYTES` (64 MiB). */
  headChunkBytes?: number;
  /** How the layers attend (`fused` GroupQueryAttention or `decomposed` standard ops). */
  attention?: ShardAttention;
}

/** What writeShard builds a shard with, beyond the model's own weights. */
export interface ShardWriteOptions {
  /** KV-cache element type of the graph's past inputs and new outputs. Default `float32`. */
  kvDtype?: KvDtype;
  /**
   * A LoRA adapter merged into the weights as they are written, one base tensor at a time
   * (fp32 bases only). The shard is filed under the adapted model's hash. Default: none.
   */
  adapter?: LoraAdapter;
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
    refuseKvDtype(options);
    return buildOnnxDecoderShard(dir as OnnxDecoderModelDir, range);
  }
  return buildLlamaShard(dir as LlamaModelDir, range, options.kvDtype ?? 'float32', options);
}

/** An imported decoder's cache keeps the export's element type. */
function refuseKvDtype(options: ShardBuildOptions): void {
  if ((options.kvDtype ?? 'float32') !== 'float32')
    throw new ShardInvalidError(
      `kvDtype ${options.kvDtype} is for SwarmBee's Llama shards; an imported ONNX decoder keeps its export's KV type`,
    );
}

function buildLlamaShard(
  dir: LlamaModelDir,
  range: LayerRange,
  kvDtype: KvDtype,
  options: ShardBuildOptions = {},
): LlamaShardGraph {
  const { config } = dir.manifest;
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

/** Writes a self-contained shard directory (graph, its own weights, shard.json) at `out`. */
export async function writeShard(
  dir: ModelDir,
  range: LayerRange,
  out: string,
  progress: ProgressFn = noProgress,
  options: ShardWriteOptions = {},
): Promise<ShardManifest> {
  if (dir.manifest.architecture === 'onnx-decoder') {
    refuseKvDtype(options);
    if (options.adapter)
      throw new AdapterUnsupportedError(
        `${dir.manifest.name} is an imported ONNX decoder: LoRA adapters merge into SwarmBee's own Llama-family graphs only`,
      );
    return writeOnnxDecoderShard(dir as OnnxDecoderModelDir, range, out, progress);
  }
  return writeLlamaShard(dir as LlamaModelDir, range, out, progress, options);
}

async function writeLlamaShard(
  dir: LlamaModelDir,
  range: LayerRange,
  out: string,
  progress: ProgressFn,
  options: ShardWriteOptions,
): Promise<LlamaShardManifest> {
  const { config } = dir.manifest;
  const kvDtype = options.kvDtype ?? 'float32';
  checkRange(config, range);
  const adapted = options.adapter ? modulesByTensor(options.adapter, dir.manifest) : undefined;
  const names = shardTensorNames(config, range).flatMap((n) => storedTensorNames(dir, n));
  for (const name of names)
    if (adapted?.has(name)) refuseQuantizedBase(dir.manifest, findTensor(dir, name));
  return StagingDir.build(out, async (staging) => {
    const placed = new Map<string, { offset: number; bytes: number; shape: number[] }>();
    const source = await open(dir.weightsPath, 'r');
    const target = await open(join(staging, SHARD_WEIGHTS_FILE), 'w');
    const weightsHash = createHash('sha256');
    const total = names.reduce((sum, n) => sum + findTensor(dir, n).bytes, 0);
    let offset = 0;
    try {
      // One reused buffer: a shard of any size costs one chunk of memory, never a tensor.
      const buffer = new Uint8Array(SHARD_COPY_CHUNK_BYTES);
      for (const name of names) {
        const tensor = findTensor(dir, name);
        // Quantized codes and zero points are bytes; keep every tensor 4-byte aligned so the
        // fp32 ones after them stay aligned (fp32-only shards never need the padding).
        const padding = (4 - (offset % 4)) % 4;
        if (padding > 0) {
          const pad = new Uint8Array(padding);
          await target.write(pad);
          weightsHash.update(pad);
          offset += padding;
        }
        placed.set(name, { offset, bytes: tensor.bytes, shape: tensor.shape });
        const modules = adapted?.get(name);
        if (modules && options.adapter) {
          // An adapted tensor is merged whole: one tensor's worth of memory, never the model's.
          const weight = await readTensor(dir, name);
          mergeModules(weight, modules, options.adapter);
          const bytes = new Uint8Array(weight.buffer, weight.byteOffset, weight.byteLength);
          await target.write(bytes);
          weightsHash.update(bytes);
          offset += bytes.length;
          continue;
        }
        for (let at = 0; at < tensor.bytes; at += buffer.length) {
          const length = Math.min(buffer.length, tensor.bytes - at);
          const piece = buffer.subarray(0, length);
          const { bytesRead } = await source.read(piece, 0, length, tensor.offset + at);
          if (bytesRead !== length)
            throw new ShardInvalidError(
              `${dir.weightsPath} ends inside tensor ${name} (read ${at + bytesRead} of ${tensor.bytes} bytes)`,
            );
          await target.write(piece);
          weightsHash.update(piece);
          offset += length;
          progress({
            phase: `shard [${range.start}, ${range.end})`,
            done: offset,
            total,
            unit: 'bytes',
          });
        }
      }
    } finally {
      await source.close();
      await target.close();
    }
    const onnx = buildLlamaShardGraph({
      config,
      layerStart: range.start,
      layerEnd: range.end,
      kvDtype,
      producer: `swarmbee ${SWARMBEE_VERSION}`,
      locate: (name) =>
        locateWeight(dir, name, (stored) => {
          const p = placed.get(stored);
          if (!p)
            throw new ShardInvalidError(
              `shard [${range.start}, ${range.end}) needs tensor ${stored}, which was not copied`,
            );
          return { location: SHARD_WEIGHTS_FILE, offset: p.offset, length: p.bytes };
        }),
    });
    await writeFile(join(staging, SHARD_GRAPH_FILE), onnx);
    const files = [
      { name: SHARD_GRAPH_FILE, bytes: onnx.length, sha256: sha256(onnx) },
      { name: SHARD_WEIGHTS_FILE, bytes: offset, sha256: weightsHash.digest('hex') },
    ];
    const manifest: LlamaShardManifest = {
      format: 'swarmbee.shard',
      formatVersion: SHARD_FORMAT_VERSION,
      kind: 'llama',
      modelHash: options.adapter
        ? adaptedModelHash(dir.manifest.modelHash, adapterHash(options.adapter))
        : dir.manifest.modelHash,
      modelName: dir.manifest.name,
      config,
      ...(kvDtype === 'float32' ? {} : { kvDtype }),
      layerStart: range.start,
      layerEnd: range.end,
      files,
      shardId: sha256(files.map((f) => `${f.name}:${f.sha256}`).join('\n')),
      createdBy: `swarmbee ${SWARMBEE_VERSION}`,
    };
    await writeFile(join(staging, SHARD_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

/** Loads a written shard directory for an engine. */
export async function openShard(
  path: string,
): Promise<{ manifest: ShardManifest; graph: ShardGraph }> {
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(await readFile(join(path, SHARD_MANIFEST_FILE), 'utf8')) as ShardManifest;
  } catch (error) {
    throw new ShardInvalidError(`${path} is not a shard dir: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (manifest.formatVersion !== SHARD_FORMAT_VERSION) {
    throw new ShardInvalidError(
      `${path} holds a shard of format version ${manifest.formatVersion ?? 1}; this SwarmBee builds and loads version ${SHARD_FORMAT_VERSION}`,
    );
  }
  if (manifest.kind !== 'onnx-decoder' && manifest.kvDtype && !(manifest.kvDtype in KV_DTYPE_BYTES))
    throw new ShardInvalidError(
      `${path} holds a shard with KV type ${manifest.kvDtype}, which this SwarmBee does not run`,
    );
  const onnx = await readFile(join(path, SHARD_GRAPH_FILE));
  const common = {
    modelHash: manifest.modelHash,
    layerStart: manifest.layerStart,
    layerEnd: manifest.layerEnd,
    onnx,
    externalDataDir: path,
  };
  const graph: ShardGraph =
    manifest.kind === 'onnx-decoder'
      ? { ...common, kind: 'onnx-decoder', config: manifest.config, io: manifest.io }
      : {
          ...common,
          kind: 'llama',
          config: manifest.config,
          ...(manifest.kvDtype ? { kvDtype: manifest.kvDtype } : {}),
        };
  return { manifest, graph };
}
