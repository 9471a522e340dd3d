/**
 * Written shards: a self-contained directory (graph, its own weights, shard.json) that a
 * coordinator offers to workers by content address, written once and opened by the
 * worker that loads it.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterUnsupportedError,
  InvalidArgumentError,
  KV_DTYPE_BYTES,
  type KvDtype,
  ShardInvalidError,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import { ChunkedSha256, writeChunkDigests } from './chunk-digests-file.js';
import { sha256 } from './hash.js';
import type { LoraAdapter } from './lora/adapter.js';
import {
  adaptedModelHash,
  adapterHash,
  mergeModules,
  modulesByTensor,
  refuseQuantizedBase,
} from './lora/merge-tensor.js';
import {
  fillLoraStack,
  type LoraStack,
  loraStackDims,
  type NamedAdapter,
  planLoraStacks,
  servedAdaptersId,
} from './lora/served-adapters.js';
import { findTensor, type LlamaModelDir, type ModelDir, readTensor } from './model-dir.js';
import { buildLlamaShardGraph } from './onnx/llama-shard-graph.js';
import type { OnnxDecoderModelDir } from './onnx-decoder/import.js';
import { writeOnnxDecoderShard } from './onnx-decoder/shard.js';
import { noProgress, type ProgressFn } from './progress.js';
import {
  checkRange,
  type LayerRange,
  type LlamaShardManifest,
  locateWeight,
  refuseLlamaOnlyOptions,
  SHARD_COPY_CHUNK_BYTES,
  SHARD_FORMAT_VERSION,
  SHARD_GRAPH_FILE,
  SHARD_MANIFEST_FILE,
  SHARD_WEIGHTS_FILE,
  type ShardGraph,
  type ShardManifest,
  servedConfig,
  shardWeightLayout,
} from './shard.js';
import { StagingDir } from './staging-dir.js';

/** What writeShard builds a shard with, beyond the model's own weights. */
export interface ShardWriteOptions {
  /** KV-cache element type of the graph's past inputs and new outputs. Default `float32`. */
  kvDtype?: KvDtype;
  /**
   * A LoRA adapter merged into the weights as they are written, one base tensor at a time
   * (fp32 bases only). The shard is filed under the adapted model's hash. Default: none.
   */
  adapter?: LoraAdapter;
  /**
   * LoRA adapters served unmerged, side by side: the base weights are copied as they are (any
   * precision) and each adapted tensor's adapters are stacked after them (`served-adapters.ts`);
   * requests pick one per row. Not with `adapter`. Default: none.
   */
  adapters?: readonly NamedAdapter[];
  /** Context the shard serves, tokens (its RoPE tables' rows; see `ShardBuildOptions`). Default the model's. */
  context?: number;
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
    refuseLlamaOnlyOptions(options);
    if (options.adapter || options.adapters?.length)
      throw new AdapterUnsupportedError(
        `${dir.manifest.name} is an imported ONNX decoder: LoRA adapters apply to SwarmBee's own Llama-family graphs only`,
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
  const config = servedConfig(dir.manifest.config, options.context);
  const kvDtype = options.kvDtype ?? 'float32';
  checkRange(config, range);
  const served = options.adapters ?? [];
  if (options.adapter && served.length > 0)
    throw new InvalidArgumentError(
      'a shard either merges one adapter or serves several unmerged, not both',
    );
  const adapted = options.adapter ? modulesByTensor(options.adapter, dir.manifest) : undefined;
  const stacks = served.length > 0 ? planLoraStacks(served, dir.manifest, range) : [];
  /** Where each stack's A and B were written in the shard's weights. */
  const stackPlaces = new Map<string, { a: number; b: number }>();
  const layout = shardWeightLayout(dir, config, range);
  const { names } = layout;
  for (const name of names)
    if (adapted?.has(name)) refuseQuantizedBase(dir.manifest, findTensor(dir, name));
  return StagingDir.build(out, async (staging) => {
    const source = await open(dir.weightsPath, 'r');
    const target = await open(join(staging, SHARD_WEIGHTS_FILE), 'w');
    const weightsHash = new ChunkedSha256();
    const total = layout.totalBytes;
    let offset = 0;
    try {
      // One reused buffer: a shard of any size costs one chunk of memory, never a tensor.
      const buffer = new Uint8Array(SHARD_COPY_CHUNK_BYTES);
      for (const name of names) {
        const tensor = findTensor(dir, name);
        // The layout's 4-byte alignment (fp32-only shards never need the padding).
        const padding = layout.placed.get(name)!.offset - offset;
        if (padding > 0) {
          const pad = new Uint8Array(padding);
          await target.write(pad);
          weightsHash.update(pad);
          offset += padding;
        }
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
      // The served adapters' stacks, one base tensor's at a time, after the base weights.
      for (const stack of stacks) {
        const { a, b } = fillLoraStack(stack, served);
        const places = { a: 0, b: 0 };
        for (const [which, values] of [
          ['a', a],
          ['b', b],
        ] as const) {
          const padding = (4 - (offset % 4)) % 4;
          const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
          for (const piece of padding > 0 ? [new Uint8Array(padding), bytes] : [bytes]) {
            await target.write(piece);
            weightsHash.update(piece);
          }
          places[which] = offset + padding;
          offset += padding + bytes.length;
        }
        stackPlaces.set(stack.tensor, places);
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
          const p = layout.placed.get(stored);
          if (!p)
            throw new ShardInvalidError(
              `shard [${range.start}, ${range.end}) needs tensor ${stored}, which was not copied`,
            );
          return { location: SHARD_WEIGHTS_FILE, offset: p.offset, length: p.bytes };
        }),
      ...(served.length > 0
        ? { lora: { stack: locateStacks(stacks, stackPlaces, served.length) } }
        : {}),
    });
    await writeFile(join(staging, SHARD_GRAPH_FILE), onnx);
    const graphHash = new ChunkedSha256();
    graphHash.update(onnx);
    const files = [
      { name: SHARD_GRAPH_FILE, bytes: onnx.length, sha256: graphHash.digest() },
      { name: SHARD_WEIGHTS_FILE, bytes: offset, sha256: weightsHash.digest() },
    ];
    // Taken in the same pass as the files' hashes: the first send reads without hashing.
    await writeChunkDigests(staging, weightsHash.chunkBytes, [
      { name: SHARD_GRAPH_FILE, digests: graphHash.digests },
      { name: SHARD_WEIGHTS_FILE, digests: weightsHash.digests },
    ]);
    const manifest: LlamaShardManifest = {
      format: 'swarmbee.shard',
      formatVersion: SHARD_FORMAT_VERSION,
      kind: 'llama',
      modelHash: options.adapter
        ? adaptedModelHash(dir.manifest.modelHash, adapterHash(options.adapter))
        : served.length > 0
          ? adaptedModelHash(dir.manifest.modelHash, servedAdaptersId(served))
          : dir.manifest.modelHash,
      modelName: dir.manifest.name,
      config,
      ...(kvDtype === 'float32' ? {} : { kvDtype }),
      ...(served.length > 0
        ? { adapters: served.map((a) => ({ name: a.name, hash: adapterHash(a.adapter) })) }
        : {}),
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

/** The graph's view of the stacks written at `places`: each base tensor's A and B in the shard's weights. */
function locateStacks(
  stacks: readonly LoraStack[],
  places: ReadonlyMap<string, { a: number; b: number }>,
  adapters: number,
) {
  const byTensor = new Map(stacks.map((s) => [s.tensor, s]));
  return (tensor: string) => {
    const stack = byTensor.get(tensor);
    if (!stack) return undefined;
    const dims = loraStackDims(stack, adapters);
    const at = places.get(tensor)!;
    const located = (d: number[], offset: number) => ({
      dims: d,
      where: { location: SHARD_WEIGHTS_FILE, offset, length: d.reduce((n, x) => n * x, 4) },
    });
    return { a: located(dims.a, at.a), b: located(dims.b, at.b) };
  };
}

/** A written shard's `shard.json`, checked: what it is, without reading its graph. */
export async function readShardManifest(path: string): Promise<ShardManifest> {
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
  return manifest;
}

/** Loads a written shard directory for an engine. */
export async function openShard(
  path: string,
): Promise<{ manifest: ShardManifest; graph: ShardGraph }> {
  const manifest = await readShardManifest(path);
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
          ...(manifest.adapters ? { adapters: manifest.adapters.length } : {}),
        };
  return { manifest, graph };
}
