/**
 * A model dir: `manifest.json`, `weights.bin` (every tensor page-aligned, in
 * layer order) and optionally a tokenizer (llama2.c `tokenizer.bin`, or Hugging
 * Face `tokenizer.json` + `tokenizer_config.json`). Written atomically; read with
 * checks that name what is wrong.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type HfTokenizerRef,
  InvalidArgumentError,
  kvBytesPerTokenPerLayer,
  type LayerCost,
  type LayerPrecision,
  type LlamaConfig,
  type LlamaManifest,
  layerWindow,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  type ModelDerivation,
  ModelDirInvalidError,
  type ModelManifest,
  type ModelSource,
  QuantizationUnsupportedError,
  SWARMBEE_VERSION,
  type TokenizerRef,
  WEIGHT_ALIGNMENT_BYTES,
  type WeightQuantization,
  type WeightTensor,
} from '@swarmbee/core';
import { sha256 } from './hash.js';
import { llamaTensorSpecs, type TensorSpec } from './llama-tensors.js';
import { noProgress, type ProgressFn } from './progress.js';
import {
  isQuantized,
  type QuantizedTensorValues,
  quantizedTensors,
} from './quant/stored-tensors.js';
import { StagingDir } from './staging-dir.js';
import { CHAT_TEMPLATE_FILE } from './tokenizer/chat-template.js';
import {
  HF_TOKENIZER_CONFIG_FILE,
  HF_TOKENIZER_FILE,
  type HfTokenizerSettings,
} from './tokenizer/hf-tokenizer.js';
import {
  LLAMA2C_BOS_ID,
  LLAMA2C_EOS_ID,
  type Llama2cVocab,
  serializeLlama2cVocab,
} from './tokenizer/llama2c-tokenizer.js';

export const MANIFEST_FILE = 'manifest.json';
export const WEIGHTS_FILE = 'weights.bin';
export const LLAMA2C_TOKENIZER_FILE = 'tokenizer.bin';

export interface ModelDir<M extends ModelManifest = ModelManifest> {
  path: string;
  manifest: M;
  weightsPath: string;
}

/** A model dir of a Llama-family model (weights SwarmBee builds graphs from). */
export type LlamaModelDir = ModelDir<LlamaManifest>;

/** Narrows a model dir to a Llama-family one, or says what needs one. */
export function requireLlamaDir(dir: ModelDir, what: string): LlamaModelDir {
  if (dir.manifest.architecture === 'llama') return dir as LlamaModelDir;
  throw new InvalidArgumentError(
    `${what} needs a Llama-family model; ${dir.manifest.name} is an imported ${dir.manifest.architecture}`,
  );
}

/**
 * Source of tensor data for a new model dir, asked for each spec in storage order:
 * the whole tensor, or its values in consecutive chunks (so an importer never holds
 * a large tensor in memory).
 */
export type TensorSource = (spec: TensorSpec) => Promise<TensorValues> | TensorValues;

export type TensorValues = Float32Array | AsyncIterable<Float32Array> | QuantizedTensorValues;

/** A Hugging Face tokenizer to store: its two JSON files, its chat template and what the manifest records. */
export interface HfTokenizerFiles {
  tokenizerJson: Uint8Array;
  tokenizerConfigJson: Uint8Array;
  settings: HfTokenizerSettings;
  /** The default chat template and the file it came from; stored as `chat_template.jinja`. */
  chatTemplate?: { text: string; source: string };
}

export interface WriteModelDirOptions {
  name: string;
  config: LlamaConfig;
  source: ModelSource;
  tensors: TensorSource;
  tokenizer?: Llama2cVocab;
  /** A Hugging Face tokenizer instead of a llama2.c one. */
  hfTokenizer?: HfTokenizerFiles;
  /** Recorded in the manifest when the model was made from another by `swarmbee optimize`. */
  derivedFrom?: ModelDerivation | ((tokenizer: TokenizerRef | undefined) => ModelDerivation);
  progress?: ProgressFn;
}

/** Writes a complete model dir at `out` (which must not exist or be empty). */
export async function writeModelDir(
  out: string,
  options: WriteModelDirOptions,
): Promise<LlamaModelDir> {
  return StagingDir.build(out, async (dir) => {
    const specs = llamaTensorSpecs(options.config);
    const weights = await writeWeights(
      join(dir, WEIGHTS_FILE),
      specs,
      options.tensors,
      options.progress ?? noProgress,
    );
    let tokenizer: TokenizerRef | undefined;
    if (options.tokenizer) {
      const bytes = serializeLlama2cVocab(options.tokenizer);
      await writeFile(join(dir, LLAMA2C_TOKENIZER_FILE), bytes);
      tokenizer = {
        kind: 'llama2c',
        file: LLAMA2C_TOKENIZER_FILE,
        sha256: sha256(bytes),
        bosId: LLAMA2C_BOS_ID,
        eosId: LLAMA2C_EOS_ID,
      };
    }
    if (options.hfTokenizer) tokenizer = await writeHfTokenizer(dir, options.hfTokenizer);
    const manifest = buildManifest(options, weights, tokenizer);
    await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return { path: out, manifest, weightsPath: join(out, WEIGHTS_FILE) };
  });
}

/** Writes a Hugging Face tokenizer's files (and chat template) into model dir `dir`; returns what the manifest records. */
export async function writeHfTokenizer(
  dir: string,
  files: HfTokenizerFiles,
): Promise<TokenizerRef> {
  await writeFile(join(dir, HF_TOKENIZER_FILE), files.tokenizerJson);
  await writeFile(join(dir, HF_TOKENIZER_CONFIG_FILE), files.tokenizerConfigJson);
  const { bosId, eosId, addBos, stopIds, endOfTurnId } = files.settings;
  const hashes = [sha256(files.tokenizerJson), sha256(files.tokenizerConfigJson)];
  const ref: HfTokenizerRef = {
    kind: 'hf',
    file: HF_TOKENIZER_FILE,
    configFile: HF_TOKENIZER_CONFIG_FILE,
    sha256: '',
    bosId,
    eosId,
    addBos,
    stopIds: [...stopIds],
  };
  if (endOfTurnId !== undefined) ref.endOfTurnId = endOfTurnId;
  if (files.chatTemplate) {
    const text = Buffer.from(files.chatTemplate.text, 'utf8');
    await writeFile(join(dir, CHAT_TEMPLATE_FILE), text);
    const hash = sha256(text);
    ref.chatTemplate = {
      file: CHAT_TEMPLATE_FILE,
      sha256: hash,
      source: files.chatTemplate.source,
    };
    hashes.push(hash);
  }
  ref.sha256 = sha256(...hashes);
  return ref;
}

interface WrittenWeights {
  bytes: number;
  sha256: string;
  tensors: WeightTensor[];
  /** The part (layer, embedding, head) each written tensor belongs to, companions included. */
  parts: Map<string, TensorSpec['part']>;
}

async function writeWeights(
  path: string,
  specs: TensorSpec[],
  source: TensorSource,
  progress: ProgressFn,
): Promise<WrittenWeights> {
  const handle = await open(path, 'w');
  const hash = createHash('sha256');
  const tensors: WeightTensor[] = [];
  const parts = new Map<string, TensorSpec['part']>();
  const total = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  let offset = 0;
  let written = 0;
  const align = async () => {
    const padding =
      (WEIGHT_ALIGNMENT_BYTES - (offset % WEIGHT_ALIGNMENT_BYTES)) % WEIGHT_ALIGNMENT_BYTES;
    if (padding > 0) offset += await append(handle, hash, new Uint8Array(padding));
  };
  try {
    for (const spec of specs) {
      const data = await source(spec);
      const expected = spec.shape.reduce((a, b) => a * b, 1);
      await align();
      if (isQuantized(data)) {
        for (const tensor of quantizedTensors(spec, data)) {
          await align();
          const start = offset;
          offset += await append(handle, hash, tensor.bytes);
          tensors.push({ ...tensor.entry, offset: start, bytes: offset - start });
          parts.set(tensor.entry.name, spec.part);
        }
        // Progress counts what the fp32 tensor would have been, so the total stays right.
        written += 4 * expected;
        progress({ phase: 'write weights', done: written, total, unit: 'bytes' });
        continue;
      }
      const start = offset;
      let elements = 0;
      for await (const chunk of data instanceof Float32Array ? [data] : data) {
        elements += chunk.length;
        if (elements > expected) break;
        offset += await append(
          handle,
          hash,
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        );
        written += chunk.byteLength;
        progress({ phase: 'write weights', done: written, total, unit: 'bytes' });
      }
      if (elements !== expected) {
        throw new ModelDirInvalidError(
          `tensor ${spec.name} has ${elements > expected ? 'more than ' : ''}${elements} elements, expected ${expected}`,
        );
      }
      tensors.push({
        name: spec.name,
        dtype: 'float32',
        shape: spec.shape,
        offset: start,
        bytes: offset - start,
      });
      parts.set(spec.name, spec.part);
    }
  } finally {
    await handle.close();
  }
  return { bytes: offset, sha256: hash.digest('hex'), tensors, parts };
}

async function append(
  handle: FileHandle,
  hash: ReturnType<typeof createHash>,
  bytes: Uint8Array,
): Promise<number> {
  hash.update(bytes);
  await handle.write(bytes);
  return bytes.length;
}

function buildManifest(
  options: WriteModelDirOptions,
  weights: WrittenWeights,
  tokenizer?: TokenizerRef,
): LlamaManifest {
  const { config } = options;
  const inPart = (part: TensorSpec['part']) =>
    weights.tensors.filter((t) => weights.parts.get(t.name) === part);
  const bytesOf = (part: TensorSpec['part']) => inPart(part).reduce((sum, t) => sum + t.bytes, 0);
  const kv = kvBytesPerTokenPerLayer(config);
  const layers: LayerCost[] = Array.from({ length: config.nLayers }, (_, l) => {
    const cost: LayerCost = { paramBytes: bytesOf(l), kvBytesPerToken: kv };
    const window = layerWindow(config, l);
    if (window !== undefined) cost.kvWindowTokens = window;
    const bits = inPart(l).find((t) => t.quantization)?.quantization?.bits;
    if (bits !== undefined) cost.precision = precisionOfBits(bits);
    return cost;
  });
  const embeddingBytes = bytesOf('embedding');
  // A tied head still costs a full embedding-sized copy on a last stage that is not stage 0.
  const headBytes = bytesOf('head') + (config.sharedClassifier ? embeddingBytes : 0);
  const modelHash = sha256(JSON.stringify(config), weights.sha256, tokenizer?.sha256 ?? '');
  const manifest: LlamaManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    name: options.name,
    architecture: 'llama',
    config,
    rope: 'rotate-half',
    weights: {
      file: WEIGHTS_FILE,
      bytes: weights.bytes,
      sha256: weights.sha256,
      tensors: weights.tensors,
    },
    layers,
    embeddingBytes,
    headBytes,
    modelHash,
    source: options.source,
    createdBy: `swarmbee ${SWARMBEE_VERSION}`,
  };
  if (tokenizer) manifest.tokenizer = tokenizer;
  // A callback once the weights and tokenizer are written: an import that quantizes on
  // the way knows the fp32 model's hash only then.
  const { derivedFrom } = options;
  if (derivedFrom)
    manifest.derivedFrom = typeof derivedFrom === 'function' ? derivedFrom(tokenizer) : derivedFrom;
  return manifest;
}

export function precisionOfBits(bits: WeightQuantization['bits']): LayerPrecision {
  return bits === 8 ? 'int8' : 'int4';
}

/** Opens a model dir, checking the manifest's shape and the weights file's size. */
export async function openModelDir(path: string): Promise<ModelDir> {
  let text: string;
  try {
    text = await readFile(join(path, MANIFEST_FILE), 'utf8');
  } catch (error) {
    throw new ModelDirInvalidError(
      `${path} is not a model dir: cannot read ${MANIFEST_FILE} (${(error as Error).message}); ` +
        'create one with `swarmbee model import` or `swarmbee model synth`',
      { cause: error },
    );
  }
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(text) as ModelManifest;
  } catch (error) {
    throw new ModelDirInvalidError(`${path}/${MANIFEST_FILE} is not valid JSON`, { cause: error });
  }
  if (manifest.format !== MANIFEST_FORMAT || manifest.formatVersion !== MANIFEST_FORMAT_VERSION) {
    throw new ModelDirInvalidError(
      `${path}/${MANIFEST_FILE} has format ${manifest.format} v${manifest.formatVersion}; ` +
        `this SwarmBee reads ${MANIFEST_FORMAT} v${MANIFEST_FORMAT_VERSION}`,
    );
  }
  const weightsPath = join(path, manifest.weights.file);
  const size = await stat(weightsPath).then(
    (s) => s.size,
    () => -1,
  );
  if (size !== manifest.weights.bytes) {
    throw new ModelDirInvalidError(
      `${weightsPath} is ${size < 0 ? 'missing' : `${size} bytes`}; the manifest says ${manifest.weights.bytes} bytes`,
    );
  }
  if (manifest.architecture === 'onnx-decoder') {
    const graph = manifest.decoder.graph;
    const graphSize = await stat(join(path, graph.file)).then(
      (s) => s.size,
      () => -1,
    );
    if (graphSize !== graph.bytes) {
      throw new ModelDirInvalidError(
        `${join(path, graph.file)} is ${graphSize < 0 ? 'missing' : `${graphSize} bytes`}; the manifest says ${graph.bytes} bytes`,
      );
    }
  }
  return { path, manifest, weightsPath };
}

export function findTensor(dir: LlamaModelDir, name: string): WeightTensor {
  const tensor = dir.manifest.weights.tensors.find((t) => t.name === name);
  if (!tensor)
    throw new ModelDirInvalidError(`${dir.path}: the manifest lists no tensor named ${name}`);
  return tensor;
}

/** Reads one fp32 tensor's values from `weights.bin` (a quantized one is refused: see quant/). */
export async function readTensor(dir: LlamaModelDir, name: string): Promise<Float32Array> {
  const tensor = findTensor(dir, name);
  if (tensor.dtype !== 'float32') {
    throw new QuantizationUnsupportedError(
      `${dir.path}: tensor ${name} is ${tensor.quantization ? `int${tensor.quantization.bits}-quantized` : tensor.dtype}; ` +
        'this needs the fp32 weights (use the model it was quantized from)',
    );
  }
  const handle = await open(dir.weightsPath, 'r');
  try {
    const out = new Float32Array(tensor.bytes / 4);
    await handle.read(new Uint8Array(out.buffer), 0, tensor.bytes, tensor.offset);
    return out;
  } finally {
    await handle.close();
  }
}
