/**
 * A GGUF file's header — metadata and tensor infos — parsed by @huggingface/gguf
 * (which reads the header in 2 MB pieces, never the tensor data), then checked against
 * the file: version 2 or 3, little-endian, every tensor's data inside the file, aligned,
 * and sized as its type and shape say. Tensor data is read later, by offset
 * ({@link readTensorBytes}), in pieces.
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { GGUFValueType, gguf } from '@huggingface/gguf';
import {
  GgufInvalidError,
  GgufTensorTypeUnsupportedError,
  ModelUnsupportedError,
} from '@swarmbee/core';
import { type GgmlTypeInfo, ggmlBlockLayout, ggmlType, ggmlTypeName } from './ggml-types.js';

/** GGUF versions read: v2 (64-bit counts) and v3 (v2 plus big-endian files, which are refused). */
export const GGUF_VERSIONS = [2, 3] as const;

export type GgufScalar = string | number | bigint | boolean;
export type GgufValue = GgufScalar | GgufValue[];

export interface GgufEntry {
  value: GgufValue;
  /** GGUF value type name: `uint32`, `float32`, `string`, `array`… */
  type: string;
  /** Element type of an array. */
  elementType?: string;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml's `ne`: the innermost (contiguous) dimension first, so `[cols, rows]` for a matrix. */
  ne: number[];
  typeId: number;
  /** The decoded type, or undefined for one SwarmBee does not decode (refused when read). */
  type: GgmlTypeInfo | undefined;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  bytes: number;
  elements: number;
}

export interface GgufFile {
  path: string;
  version: number;
  /** File size in bytes. */
  fileBytes: number;
  /** Where the tensor data section starts. */
  dataOffset: number;
  alignment: number;
  metadata: ReadonlyMap<string, GgufEntry>;
  tensors: readonly GgufTensorInfo[];
}

const VALUE_TYPE_NAMES: Record<number, string> = {
  [GGUFValueType.UINT8]: 'uint8',
  [GGUFValueType.INT8]: 'int8',
  [GGUFValueType.UINT16]: 'uint16',
  [GGUFValueType.INT16]: 'int16',
  [GGUFValueType.UINT32]: 'uint32',
  [GGUFValueType.INT32]: 'int32',
  [GGUFValueType.FLOAT32]: 'float32',
  [GGUFValueType.BOOL]: 'bool',
  [GGUFValueType.STRING]: 'string',
  [GGUFValueType.ARRAY]: 'array',
  [GGUFValueType.UINT64]: 'uint64',
  [GGUFValueType.INT64]: 'int64',
  [GGUFValueType.FLOAT64]: 'float64',
};

const HEADER_KEYS = new Set(['version', 'tensor_count', 'kv_count']);

/** Reads and checks a GGUF file's header. */
export async function openGguf(path: string): Promise<GgufFile> {
  const name = basename(path);
  const invalid = (why: string, cause?: unknown) =>
    new GgufInvalidError(`${name}: ${why}`, cause === undefined ? {} : { cause });
  const fileBytes = await stat(path).then(
    (s) => s.size,
    (error: Error) => {
      throw invalid(`cannot be read (${error.message})`, error);
    },
  );
  const claimed = await readClaimedVersion(path, fileBytes, invalid);
  if (!(GGUF_VERSIONS as readonly number[]).includes(claimed.version))
    throw invalid(
      `GGUF version ${claimed.version} is not read; SwarmBee reads GGUF v2 and v3 (re-convert a v1 file with a current llama.cpp)`,
    );
  if (!claimed.littleEndian)
    throw new ModelUnsupportedError(
      `${name}: a big-endian GGUF; SwarmBee reads little-endian files (convert it with llama.cpp's gguf_convert_endian.py)`,
    );
  let parsed: Awaited<ReturnType<typeof gguf>> & { typedMetadata: Record<string, unknown> };
  try {
    parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  } catch (error) {
    throw invalid(
      `does not parse as GGUF v${claimed.version} (${(error as Error).message}); the file is truncated or not what its header claims`,
      error,
    );
  }
  const metadata = new Map<string, GgufEntry>();
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (HEADER_KEYS.has(key)) continue;
    const typed = entry as { value: GgufValue; type: number; subType?: number };
    metadata.set(key, {
      value: typed.value,
      type: VALUE_TYPE_NAMES[typed.type] ?? `type ${typed.type}`,
      ...(typed.subType === undefined
        ? {}
        : { elementType: VALUE_TYPE_NAMES[typed.subType] ?? `type ${typed.subType}` }),
    });
  }
  const dataOffset = Number(parsed.tensorDataOffset);
  // The parser reads a short file's missing bytes as zeros rather than failing.
  if (dataOffset > fileBytes)
    throw invalid(
      `its header (${parsed.tensorInfos.length} tensor infos, ${metadata.size} keys) runs past the end of the file (${fileBytes} bytes): the file is truncated or not what its header claims`,
    );
  const alignment = Number(metadata.get('general.alignment')?.value ?? 32);
  const tensors: GgufTensorInfo[] = [];
  const seen = new Set<string>();
  for (const info of parsed.tensorInfos) {
    if (seen.has(info.name)) throw invalid(`tensor ${info.name} appears twice`);
    seen.add(info.name);
    const ne = info.shape.map(Number);
    const elements = ne.reduce((a, b) => a * b, 1);
    const layout = ggmlBlockLayout(info.dtype);
    if (!layout)
      throw invalid(`tensor ${info.name} has type id ${info.dtype}, which ggml does not define`);
    const cols = ne[0] ?? 1;
    if (cols % layout.blockWeights !== 0)
      throw invalid(
        `tensor ${info.name} (${ggmlTypeName(info.dtype)}) has rows of ${cols} weights, not a multiple of its block of ${layout.blockWeights}`,
      );
    const relative = Number(info.offset);
    const offset = dataOffset + relative;
    const bytes = (elements / layout.blockWeights) * layout.blockBytes;
    if (relative % alignment !== 0)
      throw invalid(
        `tensor ${info.name} starts at data offset ${relative}, not a multiple of the alignment ${alignment}`,
      );
    if (!Number.isSafeInteger(offset + bytes) || offset + bytes > fileBytes)
      throw invalid(
        `tensor ${info.name} (${ggmlTypeName(info.dtype)} [${ne.join(', ')}], ${bytes} bytes at ${offset}) runs past the end of the file (${fileBytes} bytes): the file is truncated or the offset is wrong`,
      );
    tensors.push({
      name: info.name,
      ne,
      typeId: info.dtype,
      type: ggmlType(info.dtype),
      offset,
      bytes,
      elements,
    });
  }
  return { path, version: claimed.version, fileBytes, dataOffset, alignment, metadata, tensors };
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read little-endian

async function readClaimedVersion(
  path: string,
  fileBytes: number,
  invalid: (why: string) => GgufInvalidError,
): Promise<{ version: number; littleEndian: boolean }> {
  if (fileBytes < 24) throw invalid(`is ${fileBytes} bytes, shorter than a GGUF header`);
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    await handle.read(head, 0, 8, 0);
    if (head.readUInt32LE(0) !== GGUF_MAGIC)
      throw invalid(
        `does not start with the GGUF magic (found ${JSON.stringify(head.toString('latin1', 0, 4))})`,
      );
    // A big-endian file's version reads as a multiple of 65536 when taken little-endian.
    const little = head.readUInt32LE(4);
    return little & 0xffff
      ? { version: little, littleEndian: true }
      : { version: head.readUInt32BE(4), littleEndian: false };
  } finally {
    await handle.close();
  }
}

/** The tensor's type, or a coded refusal naming the file, the tensor and its type. */
export function decodedType(file: GgufFile, tensor: GgufTensorInfo): GgmlTypeInfo {
  if (tensor.type) return tensor.type;
  throw new GgufTensorTypeUnsupportedError(
    `${basename(file.path)}: tensor ${tensor.name} is ${ggmlTypeName(tensor.typeId)}, a ggml type SwarmBee does not decode ` +
      '(it decodes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K); ' +
      'quantize the model with llama-quantize to one of those',
  );
}

/** Bytes read per piece when streaming a tensor. */
export const TENSOR_READ_PIECE_BYTES = 4 << 20;

/**
 * A tensor's bytes in pieces of whole rows (about {@link TENSOR_READ_PIECE_BYTES} each, at
 * least one row), read by offset from an open file.
 */
export async function* readTensorRows(
  handle: FileHandle,
  tensor: GgufTensorInfo,
): AsyncGenerator<Uint8Array> {
  const rowBytes = tensor.bytes / Math.max(1, tensor.elements / (tensor.ne[0] ?? 1));
  const rowsPerPiece = Math.max(1, Math.floor(TENSOR_READ_PIECE_BYTES / rowBytes));
  const pieceBytes = rowsPerPiece * rowBytes;
  for (let done = 0; done < tensor.bytes; done += pieceBytes) {
    const length = Math.min(pieceBytes, tensor.bytes - done);
    const piece = new Uint8Array(length);
    const { bytesRead } = await handle.read(piece, 0, length, tensor.offset + done);
    if (bytesRead !== length)
      throw new GgufInvalidError(
        `tensor ${tensor.name}: the file ended after ${done + bytesRead} of its ${tensor.bytes} bytes`,
      );
    yield piece;
  }
}

/** A whole tensor's bytes. */
export async function readTensorBytes(
  handle: FileHandle,
  tensor: GgufTensorInfo,
): Promise<Uint8Array> {
  const out = new Uint8Array(tensor.bytes);
  const { bytesRead } = await handle.read(out, 0, tensor.bytes, tensor.offset);
  if (bytesRead !== tensor.bytes)
    throw new GgufInvalidError(
      `tensor ${tensor.name}: the file ended after ${bytesRead} of its ${tensor.bytes} bytes`,
    );
  return out;
}
