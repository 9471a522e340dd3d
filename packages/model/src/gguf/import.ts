/**
 * `swarmbee model import gguf`: a GGUF file (llama.cpp's format) into a model dir. The
 * header is checked and mapped first — architecture, hyper-parameters, every tensor's
 * place and shape, the tokenizer — so a file SwarmBee cannot run is refused before a byte
 * is written; then tensors are read by offset and written one by one (fp32 tensors
 * streamed in pieces of rows), into a staging dir renamed into place when complete.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  GgufInvalidError,
  type GgufMetadataValue,
  type GgufSource,
  type WeightQuantization,
} from '@swarmbee/core';
import { sha256File } from '../hash.js';
import { type LlamaModelDir, writeModelDir } from '../model-dir.js';
import { noProgress, type ProgressFn } from '../progress.js';
import { DEFAULT_QUANT_ACTIVATIONS } from '../quant/quantize-model.js';
import { dequantize } from './dequantize.js';
import { type GgufConfigOptions, parseGgufConfig } from './gguf-config.js';
import { type GgufFile, type GgufTensorInfo, openGguf, readTensorBytes } from './gguf-file.js';
import { GgufKeys } from './gguf-keys.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import {
  DEFAULT_GGUF_REQUANTIZE,
  type GgufRequantizeTarget,
  planGgufTensors,
} from './tensor-plan.js';
import { convertTensor } from './tensor-values.js';

export interface ImportGgufOptions extends GgufConfigOptions {
  /** The .gguf file. */
  file: string;
  out: string;
  /** Model name in the manifest; default: the file name without `.gguf`. */
  name?: string;
  /** The Hugging Face repository it came from, recorded in the manifest's source. */
  repo?: string;
  /**
   * What tensors that cannot be mapped onto MatMulNBits without loss (Q4_1, Q5_1, Q2_K,
   * Q4_K, Q5_K) become: `int8` (default), `int4`, or `fp32` (ggml's values, exactly).
   */
  requantize?: GgufRequantizeTarget;
  /** How quantized matmuls treat activations; default `int8`, as llama.cpp's CPU kernels do. */
  activations?: WeightQuantization['activations'];
  progress?: ProgressFn;
}

/** Strings longer than this are recorded in the manifest by their length only. */
const METADATA_STRING_CHARS = 200;

export async function importGguf(options: ImportGgufOptions): Promise<LlamaModelDir> {
  const progress = options.progress ?? noProgress;
  const file = await openGguf(options.file);
  const keys = new GgufKeys(file);
  const model = parseGgufConfig(file, options);
  const embedding = file.tensors.find((t) => t.name === 'token_embd.weight');
  const tokens = keys.array('tokenizer.ggml.tokens');
  if (embedding && tokens && embedding.ne[1] !== tokens.length)
    throw new GgufInvalidError(
      `${keys.name}: tokenizer.ggml.tokens lists ${tokens.length} tokens but tensor token_embd.weight has ${embedding.ne[1]} rows; the vocabulary disagrees with the embedding`,
    );
  const tokenizer = ggufTokenizer(keys, model.config.vocabSize);
  const handle = await open(file.path, 'r');
  try {
    if (model.ropeFreqs) {
      // llama.cpp divides frequency i by factor i: the builder's per-frequency divisors.
      const factors = [...dequantize('F32', await readTensorBytes(handle, model.ropeFreqs))];
      model.config.ropeScaling = {
        type: 'longrope',
        shortFactor: factors,
        longFactor: factors,
        originalContext: keys.uint(`${model.architecture}.context_length`),
        attentionFactor: 1,
      };
    }
    const plan = planGgufTensors(file, model, {
      requantize: options.requantize ?? DEFAULT_GGUF_REQUANTIZE,
      headIsEmbedding: await headIsEmbedding(file),
    });
    const byName = new Map(plan.tensors.map((t) => [t.spec.name, t]));
    const fileSha256 = await sha256File(file.path, progressOf(progress, file.fileBytes));
    // Filled while the tensors are written; the manifest is made after the last one.
    const source: GgufSource = {
      kind: 'gguf',
      file: basename(file.path),
      sha256: fileSha256,
      version: file.version,
      architecture: model.architecture,
      metadata: metadataSummary(file),
      tensors: [],
      ...(options.repo ? { repo: options.repo } : {}),
    };
    const activations = options.activations ?? DEFAULT_QUANT_ACTIVATIONS;
    return await writeModelDir(options.out, {
      name: options.name ?? basename(file.path).replace(/\.gguf$/i, ''),
      config: { ...model.config, sharedClassifier: plan.tied },
      source,
      hfTokenizer: tokenizer.files,
      progress,
      tensors: async (spec) => {
        const converted = await convertTensor(handle, byName.get(spec.name)!, activations);
        source.tensors.push(converted.origin);
        return converted.values;
      },
    });
  } finally {
    await handle.close();
  }
}

function progressOf(progress: ProgressFn, total: number): (bytes: number) => void {
  let done = 0;
  return (bytes) => {
    done += bytes;
    progress({ phase: 'hash GGUF', done, total, unit: 'bytes' });
  };
}

/**
 * Whether the LM head is the embedding: the file has no `output.weight` (llama.cpp then
 * multiplies by `token_embd.weight`), or one of the same type holding the same bytes (as
 * llama.cpp's llama2.c converter writes a shared classifier).
 */
async function headIsEmbedding(file: GgufFile): Promise<boolean> {
  const output = file.tensors.find((t) => t.name === 'output.weight');
  const embedding = file.tensors.find((t) => t.name === 'token_embd.weight');
  if (!output) return true;
  if (!embedding || output.typeId !== embedding.typeId || output.bytes !== embedding.bytes)
    return false;
  return (await hashRange(file, output)) === (await hashRange(file, embedding));
}

async function hashRange(file: GgufFile, tensor: GgufTensorInfo): Promise<string> {
  const hash = createHash('sha256');
  if (tensor.bytes === 0) return hash.digest('hex');
  for await (const chunk of createReadStream(file.path, {
    start: tensor.offset,
    end: tensor.offset + tensor.bytes - 1,
    highWaterMark: 1 << 22,
  }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Scalar metadata as it is; arrays as `[N × type]`; long strings by their length. */
export function metadataSummary(file: GgufFile): Record<string, GgufMetadataValue> {
  const out: Record<string, GgufMetadataValue> = {};
  for (const [key, entry] of file.metadata) {
    const { value } = entry;
    if (Array.isArray(value)) out[key] = `[${value.length} × ${entry.elementType ?? 'value'}]`;
    else if (typeof value === 'bigint') out[key] = Number(value);
    else if (typeof value === 'string' && value.length > METADATA_STRING_CHARS)
      out[key] = `(${value.length} characters)`;
    else out[key] = value;
  }
  return out;
}
