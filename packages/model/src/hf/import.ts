/**
 * `swarmbee model import hf`: a Hugging Face checkpoint dir of a family SwarmBee
 * builds (config.json, safetensors, tokenizer.json) into a model dir. fp16 and
 * bf16 weights are widened to fp32 chunk by chunk; q/k rows are already in the
 * model dir's rotate-half layout, so nothing is permuted. Every tensor's presence
 * and shape is checked, and every tensor must be accounted for, before anything is
 * written.
 */
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HfCheckpointInvalidError, type LlamaConfig, WEIGHT_ALIGNMENT_BYTES } from '@swarmbee/core';
import { ensureDiskSpace } from '../disk-space.js';
import { sha256, sha256File } from '../hash.js';
import { llamaTensorSpecs, type TensorSpec } from '../llama-tensors.js';
import { type LlamaModelDir, writeModelDir } from '../model-dir.js';
import { noProgress, type ProgressFn } from '../progress.js';
import { HF_CONFIG_FILE, HfWeights } from './checkpoint.js';
import { type HfConfigOptions, parseHfConfig } from './config.js';
import { type ImportQuantization, quantizingImport } from './import-quantized.js';
import { hfTensorSources, unreadTensors } from './tensor-map.js';
import { readHfTokenizerFiles } from './tokenizer-files.js';

export interface ImportHfOptions extends HfConfigOptions {
  /** The checkpoint dir: config.json, model.safetensors (or shards and index), tokenizer.json. */
  dir: string;
  out: string;
  /** Model name in the manifest; default: the checkpoint dir's name. */
  name?: string;
  /** The Hugging Face repository it came from, recorded in the manifest's source. */
  repo?: string;
  /**
   * Import tokenizer.json and its companions (default true). false imports a checkpoint
   * without one (a synthetic checkpoint), to run from token ids.
   */
  tokenizer?: boolean;
  /**
   * Quantize every layer's linear weights on the way (as `optimize quantize` with its
   * defaults would after an fp32 import), never writing the fp32 model dir. Default: none.
   */
  quantize?: ImportQuantization;
  progress?: ProgressFn;
}

export async function importHf(options: ImportHfOptions): Promise<LlamaModelDir> {
  const { dir } = options;
  const progress = options.progress ?? noProgress;
  const configBytes = await readFile(join(dir, HF_CONFIG_FILE)).catch((error: Error) => {
    throw new HfCheckpointInvalidError(
      `${dir} has no readable ${HF_CONFIG_FILE} (${error.message}); is it a Hugging Face model dir?`,
      { cause: error },
    );
  });
  let configJson: unknown;
  try {
    configJson = JSON.parse(configBytes.toString('utf8'));
  } catch (error) {
    throw new HfCheckpointInvalidError(`${join(dir, HF_CONFIG_FILE)} is not valid JSON`, {
      cause: error,
    });
  }
  const parsed = parseHfConfig(configJson, dir, options);
  const { config } = parsed;
  const tokenizerFiles =
    options.tokenizer === false
      ? undefined
      : (await readHfTokenizerFiles(dir, parsed, config.vocabSize)).files;
  const weights = await HfWeights.open(dir);
  try {
    const sources = hfTensorSources(parsed.family, config);
    for (const spec of llamaTensorSpecs(config)) {
      const source = sources.get(spec.name)!;
      source.names.forEach((name, i) => {
        weights.expect(name, source.shapes[i]!);
      });
    }
    const unread = unreadTensors(weights.names(), sources, config);
    if (unread.length > 0)
      throw new HfCheckpointInvalidError(
        `${weights.fileOf(unread[0]!)}: the checkpoint has tensors its config.json does not account for: ${unread.slice(0, 5).join(', ')}` +
          (unread.length > 5 ? ` and ${unread.length - 5} more` : ''),
      );
    const name = basename(resolve(dir));
    const values = (spec: TensorSpec): AsyncIterable<Float32Array> => {
      const source = sources.get(spec.name)!;
      const stream = weights.concat(source.names);
      return source.plusOne ? plusOne(stream) : stream;
    };
    const quantizing = options.quantize
      ? quantizingImport(config, name, options.quantize, values)
      : undefined;
    await ensureDiskSpace(
      options.out,
      quantizing?.weightsBytes ?? fp32DirBytes(config),
      `the imported ${name}`,
    );
    const hashes = await hashFiles(weights, progress);
    return await writeModelDir(options.out, {
      name: options.name ?? (options.quantize ? `${name}-int${options.quantize.bits}` : name),
      config: quantizing?.config ?? config,
      source: {
        kind: 'hf',
        architecture: parsed.architecture,
        configSha256: sha256(configBytes),
        weights: hashes,
        ...(options.repo ? { repo: options.repo } : {}),
      },
      ...(tokenizerFiles ? { hfTokenizer: tokenizerFiles } : {}),
      progress,
      ...(quantizing
        ? { tensors: quantizing.tensors, derivedFrom: quantizing.derivedFrom }
        : { tensors: values }),
    });
  } finally {
    await weights.close();
  }
}

/** Bytes of an fp32 `weights.bin` for `config` (each tensor's alignment padding counted in full). */
export function fp32DirBytes(config: LlamaConfig): number {
  return llamaTensorSpecs(config).reduce(
    (sum, spec) => sum + 4 * spec.shape.reduce((a, b) => a * b, 1) + WEIGHT_ALIGNMENT_BYTES,
    0,
  );
}

async function hashFiles(
  weights: HfWeights,
  progress: ProgressFn,
): Promise<{ file: string; sha256: string }[]> {
  const total = weights.files.length;
  const hashes: { file: string; sha256: string }[] = [];
  for (const file of weights.files) {
    hashes.push({ file, sha256: await sha256File(join(weights.dir, file)) });
    progress({ phase: 'hash checkpoint', done: hashes.length, total, unit: 'files' });
  }
  return hashes;
}

/** Gemma's `(1 + w)` norm weights as the multipliers the graph takes, summed in float32 as transformers does. */
async function* plusOne(values: AsyncIterable<Float32Array>): AsyncGenerator<Float32Array> {
  for await (const chunk of values) yield chunk.map((w) => 1 + w);
}
