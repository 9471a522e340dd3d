/**
 * `swarmbee model synth-hf`: a Hugging Face checkpoint dir of a real model's shape with
 * seeded random weights — config.json, generation_config.json, bf16 safetensors split
 * into files of at most `fileBytes` with model.safetensors.index.json — for measuring
 * import, quantization, shards and serving at real size without downloading a model.
 *
 * The tensor list is the importer's own (parseHfConfig → hfTensorSources), so what is
 * written is exactly what `model import hf` reads. Values are generated and written in
 * chunks of {@link SYNTH_CHUNK_ELEMENTS}: memory stays bounded whatever the shape.
 * Each tensor has its own random stream (seeded from the seed and its name); linear
 * weights and the embedding are uniform with variance 1 / columns, so every matmul
 * keeps its input's scale and logits stay O(1); norm weights are 1.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '@swarmbee/core';
import { ensureDiskSpace } from '../disk-space.js';
import {
  HF_CONFIG_FILE,
  HF_GENERATION_CONFIG_FILE,
  HF_SAFETENSORS_INDEX_FILE,
} from '../hf/checkpoint.js';
import { parseHfConfig } from '../hf/config.js';
import {
  type PlannedTensor,
  SafetensorsStreamWriter,
  tensorBytes,
} from '../hf/safetensors-stream.js';
import { hfTensorSources } from '../hf/tensor-map.js';
import { llamaTensorSpecs } from '../llama-tensors.js';
import { noProgress, type ProgressFn } from '../progress.js';
import { StagingDir } from '../staging-dir.js';
import { HF_SYNTH_SHAPES, type HfSynthShape, type HfSynthShapeName } from './hf-shapes.js';
import { mulberry32, streamSeed } from './random.js';

/** Largest safetensors file written, in bytes (the 1B shape becomes 2 files, the 8B 9). */
export const DEFAULT_HF_SYNTH_FILE_BYTES = 2_000_000_000;
/** Values generated and written at a time (2 MiB of bf16). */
export const SYNTH_CHUNK_ELEMENTS = 1 << 20;

export interface SynthHfOptions {
  /** A shape of {@link HF_SYNTH_SHAPES} by name, or one given whole (its config must import). */
  shape: HfSynthShapeName | HfSynthShape;
  /** Weight seed (a non-negative integer). */
  seed: number;
  /** Checkpoint dir to create (must not exist or be empty). */
  out: string;
  /** Largest safetensors file, in bytes; default {@link DEFAULT_HF_SYNTH_FILE_BYTES}. */
  fileBytes?: number;
  progress?: ProgressFn;
}

export interface SynthHfCheckpoint {
  dir: string;
  files: string[];
  /** Tensor bytes across the files (the index's `total_size`). */
  bytes: number;
  tensors: number;
}

/** The checkpoint's tensors in storage order: embedding, layer by layer, final norm, head. */
export function hfSynthTensors(shape: HfSynthShapeName | HfSynthShape): PlannedTensor[] {
  const { config, family } = parseHfConfig(resolveShape(shape).config, shapeName(shape));
  const sources = hfTensorSources(family, config);
  return llamaTensorSpecs(config).flatMap((spec) => {
    const source = sources.get(spec.name)!;
    return source.names.map((name, i) => ({
      name,
      dtype: 'BF16' as const,
      shape: source.shapes[i]!,
    }));
  });
}

function resolveShape(shape: HfSynthShapeName | HfSynthShape): HfSynthShape {
  if (typeof shape !== 'string') return shape;
  const named = HF_SYNTH_SHAPES[shape] as HfSynthShape | undefined;
  if (!named)
    throw new InvalidArgumentError(
      `unknown shape ${JSON.stringify(shape)}; choose one of ${Object.keys(HF_SYNTH_SHAPES).join(', ')}`,
    );
  return named;
}

const shapeName = (shape: HfSynthShapeName | HfSynthShape) =>
  typeof shape === 'string' ? shape : shape.description;

/** Groups tensors into files of at most `fileBytes` (a larger tensor gets a file of its own). */
export function planFiles(tensors: PlannedTensor[], fileBytes: number): PlannedTensor[][] {
  const files: PlannedTensor[][] = [];
  let bytes = 0;
  for (const tensor of tensors) {
    const size = tensorBytes(tensor);
    const last = files.at(-1);
    if (last && bytes + size <= fileBytes) {
      last.push(tensor);
      bytes += size;
    } else {
      files.push([tensor]);
      bytes = size;
    }
  }
  return files;
}

export async function synthesizeHfCheckpoint(options: SynthHfOptions): Promise<SynthHfCheckpoint> {
  const shape = resolveShape(options.shape);
  const { seed } = options;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new InvalidArgumentError(`seed must be a non-negative integer, got ${seed}`);
  const fileBytes = options.fileBytes ?? DEFAULT_HF_SYNTH_FILE_BYTES;
  if (!Number.isSafeInteger(fileBytes) || fileBytes <= 0)
    throw new InvalidArgumentError(`file bytes must be a positive integer, got ${fileBytes}`);
  const progress = options.progress ?? noProgress;
  const tensors = hfSynthTensors(options.shape);
  const total = tensors.reduce((sum, t) => sum + tensorBytes(t), 0);
  await ensureDiskSpace(options.out, total, `the ${shapeName(options.shape)} checkpoint`);
  const plan = planFiles(tensors, fileBytes);
  const names = plan.map(
    (_, i) =>
      `model-${String(i + 1).padStart(5, '0')}-of-${String(plan.length).padStart(5, '0')}.safetensors`,
  );
  await StagingDir.build(options.out, async (dir) => {
    await writeJson(join(dir, HF_CONFIG_FILE), shape.config);
    await writeJson(join(dir, HF_GENERATION_CONFIG_FILE), shape.generation);
    let done = 0;
    for (const [i, fileTensors] of plan.entries()) {
      const writer = await SafetensorsStreamWriter.create(join(dir, names[i]!), fileTensors, {
        format: 'pt',
      });
      try {
        for (const tensor of fileTensors) {
          for (const chunk of randomBf16(tensor, seed)) {
            await writer.append(chunk);
            done += chunk.byteLength;
            progress({ phase: 'write checkpoint', done, total, unit: 'bytes' });
          }
        }
        await writer.close();
      } catch (error) {
        await writer.abandon();
        throw error;
      }
    }
    const weightMap: Record<string, string> = {};
    for (const [i, fileTensors] of plan.entries())
      for (const t of fileTensors) weightMap[t.name] = names[i]!;
    await writeJson(join(dir, HF_SAFETENSORS_INDEX_FILE), {
      metadata: { total_size: total },
      weight_map: Object.fromEntries(
        Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)),
      ),
    });
  });
  return { dir: options.out, files: names, bytes: total, tensors: tensors.length };
}

/** A tensor's seeded values as bf16 bytes, one chunk at a time (a reused buffer: write before the next). */
function* randomBf16(tensor: PlannedTensor, seed: number): Generator<Uint8Array> {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  const chunk = new Uint16Array(Math.min(count, SYNTH_CHUNK_ELEMENTS));
  const bytes = new Uint8Array(chunk.buffer);
  if (tensor.shape.length === 1) {
    chunk.fill(BF16_ONE);
    for (let at = 0; at < count; at += chunk.length)
      yield bytes.subarray(0, 2 * Math.min(chunk.length, count - at));
    return;
  }
  const bound = Math.sqrt(3 / tensor.shape[1]!);
  const random = mulberry32(streamSeed(seed, tensor.name));
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let at = 0; at < count; at += chunk.length) {
    const n = Math.min(chunk.length, count - at);
    for (let i = 0; i < n; i++) {
      f32[0] = (random() * 2 - 1) * bound;
      const bits = u32[0]!;
      // Round to nearest, ties to even (the values are finite).
      chunk[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    }
    yield bytes.subarray(0, 2 * n);
  }
}

const BF16_ONE = 0x3f80;

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}
