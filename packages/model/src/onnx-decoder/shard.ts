/**
 * Shards of an imported decoder. In process a shard's initializers point into
 * the model dir's `weights.bin` (nothing is copied); written out for transfer,
 * a shard carries a `weights.bin` of just the tensors its nodes read.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShardInvalidError, SWARMBEE_VERSION, WEIGHT_ALIGNMENT_BYTES } from '@swarmbee/core';
import { sha256 } from '../hash.js';
import { noProgress, type ProgressFn } from '../progress.js';
import {
  checkRange,
  type LayerRange,
  type OnnxDecoderShardGraph,
  type OnnxDecoderShardManifest,
  SHARD_FORMAT_VERSION,
  SHARD_GRAPH_FILE,
  SHARD_MANIFEST_FILE,
  SHARD_WEIGHTS_FILE,
} from '../shard.js';
import { StagingDir } from '../staging-dir.js';
import { type GraphIndex, indexGraph } from './graph-index.js';
import { externalTensor, type OnnxDecoderModelDir } from './import.js';
import { externalLocation, isExternal, type ModelProto, onnx } from './proto.js';
import { cutStageGraph, type StageGraph, type StageGraphSpec } from './stage-graph.js';

const decoded = new Map<string, { model: ModelProto; index: GraphIndex }>();

/** The model dir's graph, decoded once per process (its content hash is the key). */
function sourceGraph(dir: OnnxDecoderModelDir): { model: ModelProto; index: GraphIndex } {
  const { graph } = dir.manifest.decoder;
  let entry = decoded.get(graph.sha256);
  if (!entry) {
    const bytes = readFileSync(join(dir.path, graph.file));
    if (sha256(bytes) !== graph.sha256) {
      throw new ShardInvalidError(`${dir.path}/${graph.file} does not match its manifest's sha256`);
    }
    const model = onnx.ModelProto.decode(bytes);
    entry = { model, index: indexGraph(model.graph!) };
    decoded.set(graph.sha256, entry);
  }
  return entry;
}

/** The stage graph of `range`, each initializer placed by `place` (kept, or moved to the shard's file). */
function cutStage(
  dir: OnnxDecoderModelDir,
  range: LayerRange,
  place: StageGraphSpec['place'],
): StageGraph {
  const { manifest } = dir;
  return cutStageGraph({
    ...sourceGraph(dir),
    layout: manifest.decoder,
    nLayers: manifest.config.nLayers,
    dim: manifest.config.dim,
    range,
    place,
    producer: `swarmbee ${SWARMBEE_VERSION}`,
  });
}

export function buildOnnxDecoderShard(
  dir: OnnxDecoderModelDir,
  range: LayerRange,
): OnnxDecoderShardGraph {
  const { manifest } = dir;
  checkRange(manifest.config, range);
  const stage = cutStage(dir, range, (tensor) => tensor);
  return {
    kind: 'onnx-decoder',
    modelHash: manifest.modelHash,
    config: manifest.config,
    io: stage.io,
    layerStart: range.start,
    layerEnd: range.end,
    onnx: stage.onnx,
    externalDataDir: dir.path,
  };
}

export async function writeOnnxDecoderShard(
  dir: OnnxDecoderModelDir,
  range: LayerRange,
  out: string,
  progress: ProgressFn = noProgress,
): Promise<OnnxDecoderShardManifest> {
  const { manifest } = dir;
  checkRange(manifest.config, range);
  // Each external initializer gets the next aligned slot of the shard's own weights file.
  const copies: { from: number; to: number; length: number }[] = [];
  let cursor = 0;
  const stage = cutStage(dir, range, (tensor) => {
    if (!isExternal(tensor)) return tensor;
    const { offset, length } = externalLocation(tensor);
    const to = Math.ceil(cursor / WEIGHT_ALIGNMENT_BYTES) * WEIGHT_ALIGNMENT_BYTES;
    copies.push({ from: offset, to, length });
    cursor = to + length;
    return externalTensor(tensor, SHARD_WEIGHTS_FILE, to, length);
  });
  return StagingDir.build(out, async (staging) => {
    const source = await open(dir.weightsPath, 'r');
    const target = await open(join(staging, SHARD_WEIGHTS_FILE), 'w');
    const hash = createHash('sha256');
    let written = 0;
    try {
      for (const copy of copies) {
        if (copy.to > written) {
          const padding = new Uint8Array(copy.to - written);
          hash.update(padding);
          await target.write(padding);
        }
        const bytes = new Uint8Array(copy.length);
        await source.read(bytes, 0, copy.length, copy.from);
        hash.update(bytes);
        await target.write(bytes);
        written = copy.to + copy.length;
        progress({
          phase: `shard [${range.start}, ${range.end})`,
          done: written,
          total: cursor,
          unit: 'bytes',
        });
      }
    } finally {
      await source.close();
      await target.close();
    }
    await writeFile(join(staging, SHARD_GRAPH_FILE), stage.onnx);
    const files = [
      { name: SHARD_GRAPH_FILE, bytes: stage.onnx.length, sha256: sha256(stage.onnx) },
      { name: SHARD_WEIGHTS_FILE, bytes: written, sha256: hash.digest('hex') },
    ];
    const shard: OnnxDecoderShardManifest = {
      format: 'swarmbee.shard',
      formatVersion: SHARD_FORMAT_VERSION,
      kind: 'onnx-decoder',
      modelHash: manifest.modelHash,
      modelName: manifest.name,
      config: manifest.config,
      io: stage.io,
      layerStart: range.start,
      layerEnd: range.end,
      files,
      shardId: sha256(files.map((f) => `${f.name}:${f.sha256}`).join('\n')),
      createdBy: `swarmbee ${SWARMBEE_VERSION}`,
    };
    await writeFile(join(staging, SHARD_MANIFEST_FILE), `${JSON.stringify(shard, null, 2)}\n`);
    return shard;
  });
}
