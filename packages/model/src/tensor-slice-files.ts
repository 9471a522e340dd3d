/**
 * Written member shards: a directory a worker hosting one member of a tensor-parallel
 * group loads — the member's segment graphs (sliced weights inside them), its own copy of
 * the weights it reads whole (`weights.bin`: norms, and the leader's embedding and head),
 * and `shard.json` recording the slice. The shard id hashes the slice with the files, so
 * two slices of one layer range never share a cache entry, even where their bytes agree.
 */
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type LlamaConfig, ShardInvalidError, SWARMBEE_VERSION } from '@swarmbee/core';
import { sha256 } from './hash.js';
import { findTensor, type ModelDir } from './model-dir.js';
import {
  type LayerRange,
  locateWeight,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  SHARD_WEIGHTS_FILE,
} from './shard.js';
import { StagingDir } from './staging-dir.js';
import type { TensorSlice } from './tensor-slice.js';
import {
  buildSegments,
  checkSliceShard,
  headTensorName,
  holdsHead,
  type SliceShardOptions,
  type TensorSliceShard,
  unslicedTensorNames,
} from './tensor-slice-shard.js';

/** `shard.json` of a member shard. */
export interface SliceShardManifest {
  format: 'swarmbee.shard';
  formatVersion: number;
  kind: 'llama-slice';
  modelHash: string;
  modelName: string;
  config: LlamaConfig;
  layerStart: number;
  layerEnd: number;
  /** The member's share: degree, rank, KV heads and feed-forward columns. */
  slice: TensorSlice;
  files: { name: string; bytes: number; sha256: string }[];
  /** sha256 over the slice and the files' hashes: the shard's content address. */
  shardId: string;
  createdBy: string;
}

/** File names of a member shard's segment graphs. */
export const SLICE_SEGMENT_FILES = {
  embedding: 'embedding.onnx',
  head: 'head.onnx',
  attention: (layer: number) => `layer.${layer}.attention.onnx`,
  feedForward: (layer: number) => `layer.${layer}.feed_forward.onnx`,
} as const;

/** Writes member `slice.rank`'s shard for `range` at `out` (atomically, through a staging dir). */
export async function writeSliceShard(
  dir: ModelDir,
  range: LayerRange,
  slice: TensorSlice,
  out: string,
  options: SliceShardOptions = {},
): Promise<SliceShardManifest> {
  const llama = checkSliceShard(dir, range, slice, options);
  const { config } = llama.manifest;
  return StagingDir.build(out, async (staging) => {
    const placed = new Map<string, { offset: number; bytes: number }>();
    const names = unslicedTensorNames(config, range, slice);
    const source = await open(llama.weightsPath, 'r');
    const weights: Buffer[] = [];
    let offset = 0;
    const copy = async (name: string, at: number, length: number) => {
      const bytes = Buffer.alloc(length);
      const { bytesRead } = await source.read(bytes, 0, length, at);
      if (bytesRead !== length)
        throw new ShardInvalidError(`${llama.weightsPath} ends inside tensor ${name}`);
      weights.push(bytes);
      const where = { offset, bytes: length };
      offset += length;
      return where;
    };
    // A head split by vocabulary: the member's rows of it, copied alone.
    let headRows: { offset: number; bytes: number } | undefined;
    try {
      // Norms, an embedding and a head: small next to the sliced layers, read whole.
      for (const name of names) {
        const tensor = findTensor(llama, name);
        placed.set(name, await copy(name, tensor.offset, tensor.bytes));
      }
      const { vocab } = slice;
      if (vocab && holdsHead(config, range, slice)) {
        const head = findTensor(llama, headTensorName(config));
        const rowBytes = config.dim * Float32Array.BYTES_PER_ELEMENT;
        headRows = await copy(
          head.name,
          head.offset + vocab.start * rowBytes,
          (vocab.end - vocab.start) * rowBytes,
        );
      }
    } finally {
      await source.close();
    }
    const weightsBytes = Buffer.concat(weights);
    await writeFile(join(staging, SHARD_WEIGHTS_FILE), weightsBytes);
    const segments = await buildSegments(
      llama,
      range,
      slice,
      options,
      (name) =>
        locateWeight(llama, name, (stored) => {
          const p = placed.get(stored);
          if (!p)
            throw new ShardInvalidError(
              `member shard needs tensor ${stored}, which was not copied`,
            );
          return { location: SHARD_WEIGHTS_FILE, offset: p.offset, length: p.bytes };
        }),
      (_name, rows) => ({
        dims: [rows.end - rows.start, config.dim],
        where: { location: SHARD_WEIGHTS_FILE, offset: headRows!.offset, length: headRows!.bytes },
      }),
    );
    const files = [{ name: SHARD_WEIGHTS_FILE, bytes: offset, sha256: sha256(weightsBytes) }];
    const put = async (name: string, graph: Uint8Array) => {
      await writeFile(join(staging, name), graph);
      files.push({ name, bytes: graph.length, sha256: sha256(graph) });
    };
    if (segments.embedding) await put(SLICE_SEGMENT_FILES.embedding, segments.embedding);
    for (const [l, layer] of segments.layers.entries()) {
      await put(SLICE_SEGMENT_FILES.attention(range.start + l), layer.attention);
      await put(SLICE_SEGMENT_FILES.feedForward(range.start + l), layer.feedForward);
    }
    if (segments.head) await put(SLICE_SEGMENT_FILES.head, segments.head);
    const manifest: SliceShardManifest = {
      format: 'swarmbee.shard',
      formatVersion: SHARD_FORMAT_VERSION,
      kind: 'llama-slice',
      modelHash: llama.manifest.modelHash,
      modelName: llama.manifest.name,
      config,
      layerStart: range.start,
      layerEnd: range.end,
      slice,
      files,
      shardId: sliceShardId(slice, files),
      createdBy: `swarmbee ${SWARMBEE_VERSION}`,
    };
    await writeFile(join(staging, SHARD_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

/** The content address of a member shard: its slice, then each file's hash. */
export function sliceShardId(slice: TensorSlice, files: SliceShardManifest['files']): string {
  const { degree, rank, kvHeads, columns, vocab } = slice;
  const sliceLine = `slice:${degree}:${rank}:${kvHeads.start}-${kvHeads.end}:${columns.start}-${columns.end}${vocab ? `:vocab${vocab.start}-${vocab.end}` : ''}`;
  return sha256([sliceLine, ...files.map((f) => `${f.name}:${f.sha256}`)].join('\n'));
}

/**
 * Loads a written member shard, checking every file against the manifest's hashes and the
 * shard id against the slice: a file changed, or a manifest edited to claim another
 * slice, is a ShardInvalidError.
 */
export async function openSliceShard(
  path: string,
): Promise<{ manifest: SliceShardManifest; shard: TensorSliceShard }> {
  let manifest: SliceShardManifest;
  try {
    manifest = JSON.parse(
      await readFile(join(path, SHARD_MANIFEST_FILE), 'utf8'),
    ) as SliceShardManifest;
  } catch (error) {
    throw new ShardInvalidError(`${path} is not a shard dir: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (manifest.kind !== 'llama-slice' || manifest.formatVersion !== SHARD_FORMAT_VERSION)
    throw new ShardInvalidError(
      `${path} holds a ${manifest.kind ?? 'llama'} shard of format ${manifest.formatVersion}, not a tensor-parallel member shard of format ${SHARD_FORMAT_VERSION}`,
    );
  if (sliceShardId(manifest.slice, manifest.files) !== manifest.shardId)
    throw new ShardInvalidError(
      `${path}: shard id ${manifest.shardId} does not match its slice and files`,
    );
  const bytes = new Map<string, Buffer>();
  for (const file of manifest.files) {
    const data = await readFile(join(path, file.name));
    const digest = createHash('sha256').update(data).digest('hex');
    if (data.length !== file.bytes || digest !== file.sha256)
      throw new ShardInvalidError(`${path}/${file.name} does not match its hash in the manifest`);
    if (file.name !== SHARD_WEIGHTS_FILE) bytes.set(file.name, data);
  }
  const graph = (name: string) => {
    const data = bytes.get(name);
    if (!data) throw new ShardInvalidError(`${path} lists no ${name}`);
    return data;
  };
  const { layerStart, layerEnd, slice, config } = manifest;
  const shard: TensorSliceShard = {
    kind: 'llama-slice',
    modelHash: manifest.modelHash,
    config,
    layerStart,
    layerEnd,
    slice,
    layers: Array.from({ length: layerEnd - layerStart }, (_, l) => ({
      attention: graph(SLICE_SEGMENT_FILES.attention(layerStart + l)),
      feedForward: graph(SLICE_SEGMENT_FILES.feedForward(layerStart + l)),
    })),
    externalDataDir: path,
  };
  if (slice.rank === 0 && layerStart === 0) shard.embedding = graph(SLICE_SEGMENT_FILES.embedding);
  if (holdsHead(config, { start: layerStart, end: layerEnd }, slice))
    shard.head = graph(SLICE_SEGMENT_FILES.head);
  return { manifest, shard };
}
