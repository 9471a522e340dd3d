/**
 * `swarmbee model import onnx`: an existing decoder export into a model dir.
 * The graph is kept as exported, except that every initializer of at least
 * {@link ONNX_EXTERNAL_MIN_BYTES} moves into one page-aligned `weights.bin`, in
 * part order (embedding, layer 0, 1, ..., head), whether it was embedded in the
 * protobuf or in the export's own external data files. Shards then reference
 * byte ranges of that file, and a written shard copies just its own.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  DECODER_DTYPE_BYTES,
  InvalidArgumentError,
  type LayerCost,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  ONNX_EXTERNAL_MIN_BYTES,
  type OnnxDecoderConfig,
  type OnnxDecoderLayout,
  type OnnxDecoderManifest,
  OnnxGraphUnsupportedError,
  type OnnxWeightTensor,
  SWARMBEE_VERSION,
  WEIGHT_ALIGNMENT_BYTES,
} from '@swarmbee/core';
import { sha256 } from '../hash.js';
import { readHfTokenizerFiles } from '../hf/tokenizer-files.js';
import {
  type HfTokenizerFiles,
  MANIFEST_FILE,
  type ModelDir,
  WEIGHTS_FILE,
  writeHfTokenizer,
} from '../model-dir.js';
import { noProgress, type ProgressFn } from '../progress.js';
import { StagingDir } from '../staging-dir.js';
import { HF_TOKENIZER_FILE } from '../tokenizer/hf-tokenizer.js';
import { type DetectedDecoder, detectDecoder, type Part } from './detect.js';
import {
  defaultOpset,
  dtypeOf,
  externalLocation,
  inlineBytes,
  isExternal,
  type ModelProto,
  onnx,
  type TensorProto,
  tensorByteLength,
  tensorDims,
} from './proto.js';

/** The imported graph's file name inside the model dir. */
export const DECODER_GRAPH_FILE = 'decoder.onnx';

/** Protobuf's hard limit: a larger .onnx file cannot be a valid model (big models keep weights outside). */
const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;
/** Bytes copied per read from an export's external data file. */
const COPY_CHUNK_BYTES = 16 * 1024 ** 2;

export interface ImportOnnxOptions {
  /** The decoder-with-past graph (.onnx); its external data files are resolved beside it. */
  model: string;
  /** Model dir to create (must not exist or be empty). */
  out: string;
  /** Model name. Default: the name of the directory holding the graph. */
  name?: string;
  /**
   * Context length in tokens. Default: `context_length` of a genai_config.json beside
   * the graph, else `n_positions` / `max_position_embeddings` / `n_ctx` of a
   * config.json there, else the rows of the graph's learned position table.
   */
  context?: number;
  progress?: ProgressFn;
}

export type OnnxDecoderModelDir = ModelDir<OnnxDecoderManifest>;

export async function importOnnxDecoder(options: ImportOnnxOptions): Promise<OnnxDecoderModelDir> {
  const path = resolve(options.model);
  const size = (await stat(path)).size;
  if (size > PROTOBUF_MAX_BYTES)
    throw new OnnxGraphUnsupportedError(`${path} is larger than a protobuf can be (2 GiB)`);
  const bytes = await readFile(path);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new OnnxGraphUnsupportedError(
      `${path} is not an ONNX model: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const detected = detectDecoder(model);
  const maxSeqLen = await resolveContext(path, options.context, detected.positionTableRows);
  const tokenizer = await readExportTokenizer(dirname(path), detected.vocabSize);
  const config: OnnxDecoderConfig = {
    dim: detected.dim,
    nLayers: detected.nLayers,
    nHeads: detected.nHeads,
    nKvHeads: detected.io.kv.kvHeads,
    headDim: detected.io.kv.headDim,
    vocabSize: detected.vocabSize,
    maxSeqLen,
    weightDtype: detected.weightDtype,
  };
  return StagingDir.build(options.out, async (staging) => {
    const weights = await moveInitializers(
      model,
      detected,
      dirname(path),
      join(staging, WEIGHTS_FILE),
      options.progress ?? noProgress,
    );
    const graphBytes = onnx.ModelProto.encode(model).finish();
    await writeFile(join(staging, DECODER_GRAPH_FILE), graphBytes);
    const tokenizerRef = tokenizer && (await writeHfTokenizer(staging, tokenizer));
    const decoder: OnnxDecoderLayout = {
      graph: { file: DECODER_GRAPH_FILE, bytes: graphBytes.length, sha256: sha256(graphBytes) },
      opset: defaultOpset(model),
      inputIds: detected.io.inputIds,
      positionIds: detected.io.positionIds,
      attentionMask: detected.io.attentionMask,
      logits: detected.io.logits,
      kv: detected.io.kv,
      hiddenDtype: detected.hiddenDtype,
      cuts: detected.cuts,
      tiedEmbedding: detected.tiedEmbedding,
      ...(detected.attentionBiases.length > 0 ? { attentionBiases: detected.attentionBiases } : {}),
      patterns: detected.patterns,
    };
    const manifest: OnnxDecoderManifest = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      name: options.name ?? basename(dirname(path)),
      architecture: 'onnx-decoder',
      config,
      weights: { file: WEIGHTS_FILE, ...weights },
      decoder,
      ...(tokenizerRef ? { tokenizer: tokenizerRef } : {}),
      ...costs(detected, config),
      modelHash: sha256(
        JSON.stringify({ config, decoder }),
        weights.sha256,
        tokenizerRef?.sha256 ?? '',
      ),
      source: {
        kind: 'onnx',
        file: basename(path),
        sha256: sha256(bytes),
        producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
      },
      createdBy: `swarmbee ${SWARMBEE_VERSION}`,
    };
    await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return { path: options.out, manifest, weightsPath: join(options.out, WEIGHTS_FILE) };
  });
}

/**
 * The Hugging Face tokenizer an export ships beside its graph (onnxruntime-genai's model
 * builder and Optimum copy `tokenizer.json`, `tokenizer_config.json` and the chat template
 * there), or none when there is no `tokenizer.json`. Stop ids: `eos_token_id` of
 * genai_config.json (else config.json, else generation_config.json), the tokenizer's EOS and
 * the template's end of turn. BOS is the tokenizer's own, as the export's runtime encodes.
 */
async function readExportTokenizer(
  dir: string,
  vocabSize: number,
): Promise<HfTokenizerFiles | undefined> {
  const present = await stat(join(dir, HF_TOKENIZER_FILE)).then(
    () => true,
    () => false,
  );
  if (!present) return undefined;
  const genai = (await readJsonBeside(dir, 'genai_config.json'))?.model as
    | Record<string, unknown>
    | undefined;
  const hf = await readJsonBeside(dir, 'config.json');
  const eos = genai?.eos_token_id ?? hf?.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]).filter(
    (id): id is number => Number.isInteger(id) && (id as number) >= 0,
  );
  return (await readHfTokenizerFiles(dir, { eosTokenIds }, vocabSize)).files;
}

/** A JSON object file in `dir`, or undefined when there is none; a file that is not a JSON object is refused. */
async function readJsonBeside(
  dir: string,
  name: string,
): Promise<Record<string, unknown> | undefined> {
  const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {}
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`${join(dir, name)} is not a JSON object`);
  return value as Record<string, unknown>;
}

async function resolveContext(
  graphPath: string,
  given: number | undefined,
  tableRows: number | undefined,
): Promise<number> {
  const readJson = (name: string) => readJsonBeside(dirname(graphPath), name);
  const positive = (v: unknown) =>
    Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined;
  let context = given;
  if (context === undefined) {
    const genai = (await readJson('genai_config.json'))?.model as
      | Record<string, unknown>
      | undefined;
    const hf = await readJson('config.json');
    context =
      positive(genai?.context_length) ??
      positive(hf?.n_positions) ??
      positive(hf?.max_position_embeddings) ??
      positive(hf?.n_ctx) ??
      tableRows;
  }
  if (context === undefined || !positive(context)) {
    throw new InvalidArgumentError(
      `cannot tell the context length of ${graphPath}: pass --context (no genai_config.json or config.json beside it, no position table)`,
    );
  }
  if (tableRows !== undefined && context > tableRows) {
    throw new InvalidArgumentError(
      `context ${context} exceeds the graph's position table of ${tableRows} rows`,
    );
  }
  return context;
}

/** Costs the planner charges: initializer bytes per part; a shared initializer counts for each part that reads it. */
function costs(
  detected: DetectedDecoder,
  config: OnnxDecoderConfig,
): { layers: LayerCost[]; embeddingBytes: number; headBytes: number } {
  const kvBytesPerToken =
    2 * config.nKvHeads * config.headDim * DECODER_DTYPE_BYTES[detected.io.kv.dtype];
  const layers: LayerCost[] = Array.from({ length: config.nLayers }, () => ({
    paramBytes: 0,
    kvBytesPerToken,
  }));
  let embeddingBytes = 0;
  let headBytes = 0;
  for (const [name, parts] of detected.initializerParts) {
    const bytes = tensorByteLength(detected.index.initializers.get(name)!);
    for (const part of parts) {
      if (part === 'embedding') embeddingBytes += bytes;
      else if (part === 'head') headBytes += bytes;
      else layers[part]!.paramBytes += bytes;
    }
  }
  return { layers, embeddingBytes, headBytes };
}

function partRank(parts: Part[] | undefined, nLayers: number): number {
  const ranks = (parts ?? []).map((p) => (p === 'embedding' ? -1 : p === 'head' ? nLayers : p));
  return ranks.length > 0 ? Math.min(...ranks) : nLayers + 1;
}

/**
 * Writes every large initializer into `weightsPath`, in part order, page-aligned,
 * and points the graph's initializers at it. Small ones stay (or come back) inline.
 */
async function moveInitializers(
  model: ModelProto,
  detected: DetectedDecoder,
  sourceDir: string,
  weightsPath: string,
  progress: ProgressFn,
): Promise<{ bytes: number; sha256: string; tensors: OnnxWeightTensor[] }> {
  const graph = model.graph!;
  const initializers = graph.initializer ?? [];
  const rank = (t: TensorProto) =>
    partRank(detected.initializerParts.get(t.name ?? ''), detected.nLayers);
  const order = initializers
    .map((t, i) => ({ t, i }))
    .sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i)
    .map(({ t }) => t);
  const large = order.filter((t) => tensorByteLength(t) >= ONNX_EXTERNAL_MIN_BYTES);
  const total = large.reduce((sum, t) => sum + tensorByteLength(t), 0);
  const target = await open(weightsPath, 'w');
  const hash = createHash('sha256');
  const sources = new Map<string, FileHandle>();
  const tensors: OnnxWeightTensor[] = [];
  const replaced = new Map<TensorProto, TensorProto>();
  let offset = 0;
  let done = 0;
  const write = async (chunk: Uint8Array) => {
    hash.update(chunk);
    await target.write(chunk);
    offset += chunk.length;
  };
  try {
    for (const tensor of order) {
      const name = tensor.name ?? '';
      const length = tensorByteLength(tensor);
      const read = (into: (chunk: Uint8Array) => Promise<void>) =>
        isExternal(tensor)
          ? copyExternal(tensor, sourceDir, sources, into)
          : into(inlineBytes(tensor));
      if (length < ONNX_EXTERNAL_MIN_BYTES) {
        if (isExternal(tensor)) {
          const parts: Uint8Array[] = [];
          await read(async (chunk) => {
            parts.push(chunk);
          });
          replaced.set(tensor, {
            name,
            dataType: tensor.dataType,
            dims: tensor.dims,
            rawData: Buffer.concat(parts),
          });
        }
        continue;
      }
      const padding =
        (WEIGHT_ALIGNMENT_BYTES - (offset % WEIGHT_ALIGNMENT_BYTES)) % WEIGHT_ALIGNMENT_BYTES;
      if (padding > 0) await write(new Uint8Array(padding));
      const at = offset;
      await read(write);
      if (offset - at !== length) {
        throw new OnnxGraphUnsupportedError(
          `initializer ${name} holds ${offset - at} bytes; its type and dims say ${length}`,
        );
      }
      tensors.push({
        name,
        dtype: dtypeOf(tensor.dataType ?? 0, name).name,
        shape: tensorDims(tensor),
        offset: at,
        bytes: length,
      });
      replaced.set(tensor, externalTensor(tensor, WEIGHTS_FILE, at, length));
      done += length;
      progress({ phase: 'import weights', done, total, unit: 'bytes' });
    }
  } finally {
    await target.close();
    for (const handle of sources.values()) await handle.close();
  }
  graph.initializer = initializers.map((t) => replaced.get(t) ?? t);
  return { bytes: offset, sha256: hash.digest('hex'), tensors };
}

/** An initializer pointing at `length` bytes at `offset` of `location`. */
export function externalTensor(
  tensor: TensorProto,
  location: string,
  offset: number,
  length: number,
): TensorProto {
  return {
    name: tensor.name,
    dataType: tensor.dataType,
    dims: tensor.dims,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

async function copyExternal(
  tensor: TensorProto,
  sourceDir: string,
  handles: Map<string, FileHandle>,
  into: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const { location, offset, length } = externalLocation(tensor);
  let handle = handles.get(location);
  if (!handle) {
    const file = resolve(sourceDir, location);
    // As onnxruntime does: external data lives beside the graph, never elsewhere on the disk.
    if (isAbsolute(location) || relative(sourceDir, file).startsWith('..')) {
      throw new OnnxGraphUnsupportedError(
        `initializer ${tensor.name} points outside the graph's directory (${location})`,
      );
    }
    try {
      handle = await open(file, 'r');
    } catch (error) {
      throw new OnnxGraphUnsupportedError(
        `initializer ${tensor.name} lives in ${file}, which cannot be read: ${(error as Error).message}`,
        { cause: error },
      );
    }
    handles.set(location, handle);
  }
  for (let at = 0; at < length; at += COPY_CHUNK_BYTES) {
    const chunk = new Uint8Array(Math.min(COPY_CHUNK_BYTES, length - at));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset + at);
    if (bytesRead !== chunk.length) {
      throw new OnnxGraphUnsupportedError(
        `initializer ${tensor.name}: ${location} ends before byte ${offset + length}`,
      );
    }
    await into(chunk);
  }
}
