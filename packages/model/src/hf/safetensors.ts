/**
 * A reader for safetensors files: an 8-byte little-endian header length, a JSON
 * header ({name: {dtype, shape, data_offsets}}), then the raw little-endian data.
 * Tensors are streamed as fp32 in bounded chunks, so a checkpoint is never held
 * in memory; fp16 and bf16 are widened exactly on the way.
 *
 * Written here rather than taken from npm: the registry has no maintained
 * streaming reader (the `safetensors` package is an empty 0.0.1 placeholder, and
 * @huggingface/hub only parses remote headers), and the format is small enough to
 * check completely: every offset is validated against the file before any read.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { SafetensorsInvalidError } from '@swarmbee/core';

/** Largest header accepted, as the reference implementation limits it (100 MB). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** Bytes read per chunk while streaming a tensor. */
export const SAFETENSORS_CHUNK_BYTES = 4 * 1024 * 1024;

/** Element sizes in bytes of the dtypes safetensors defines. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Dtypes SwarmBee converts to its fp32 model dir. */
export const CONVERTIBLE_DTYPES = ['F32', 'F16', 'BF16'] as const;

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly #handle: FileHandle;

  private constructor(
    path: string,
    handle: FileHandle,
    tensors: Map<string, SafetensorsEntry>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.#handle = handle;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Opens and validates a file's header; the data is read only when streamed. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new SafetensorsInvalidError(`cannot open ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const { size } = await handle.stat();
      const bad = (why: string): never => {
        throw new SafetensorsInvalidError(`${path}: not a valid safetensors file: ${why}`);
      };
      if (size < 8) bad(`the file is ${size} bytes, shorter than the 8-byte header length`);
      const prefix = new Uint8Array(8);
      await handle.read(prefix, 0, 8, 0);
      const headerBytes = Number(new DataView(prefix.buffer).getBigUint64(0, true));
      if (headerBytes > SAFETENSORS_MAX_HEADER_BYTES)
        bad(`the header claims ${headerBytes} bytes (limit ${SAFETENSORS_MAX_HEADER_BYTES})`);
      if (8 + headerBytes > size)
        bad(`the header claims ${headerBytes} bytes but the file has ${size}`);
      const text = new Uint8Array(headerBytes);
      await handle.read(text, 0, headerBytes, 8);
      const parsed = parseHeader(text, bad);
      const dataStart = 8 + headerBytes;
      const tensors = checkEntries(parsed.entries, dataStart, size, bad);
      return new SafetensorsFile(path, handle, tensors, parsed.metadata);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  entry(name: string): SafetensorsEntry | undefined {
    return this.tensors.get(name);
  }

  /** Streams one tensor as fp32, in chunks of at most `chunkBytes` of source data. */
  async *readFloat32(
    name: string,
    chunkBytes: number = SAFETENSORS_CHUNK_BYTES,
  ): AsyncGenerator<Float32Array> {
    const entry = this.tensors.get(name);
    if (!entry) throw new SafetensorsInvalidError(`${this.path} holds no tensor named ${name}`);
    const widen = WIDEN[entry.dtype];
    if (!widen) {
      throw new SafetensorsInvalidError(
        `${this.path}: tensor ${name} is ${entry.dtype}; SwarmBee converts ${CONVERTIBLE_DTYPES.join(', ')} to fp32`,
      );
    }
    const elementBytes = DTYPE_BYTES[entry.dtype]!;
    const step = Math.max(elementBytes, chunkBytes - (chunkBytes % elementBytes));
    for (let at = entry.begin; at < entry.end; at += step) {
      const length = Math.min(step, entry.end - at);
      // A fresh buffer per chunk is 8-byte aligned, so it can be viewed as any dtype.
      const bytes = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await this.#handle.read(bytes, read, length - read, at + read);
        if (bytesRead === 0)
          throw new SafetensorsInvalidError(`${this.path}: the file ended inside ${name}`);
        read += bytesRead;
      }
      yield widen(bytes);
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

interface RawEntry {
  name: string;
  value: unknown;
}

function parseHeader(
  text: Uint8Array,
  bad: (why: string) => never,
): { entries: RawEntry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch (error) {
    bad(`the header is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    bad('the header is not a JSON object');
  const entries: RawEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null) bad('__metadata__ is not an object');
      metadata = value as Record<string, string>;
    } else {
      entries.push({ name, value });
    }
  }
  return { entries, metadata };
}

function checkEntries(
  raw: RawEntry[],
  dataStart: number,
  fileBytes: number,
  bad: (why: string) => never,
): Map<string, SafetensorsEntry> {
  const dataBytes = fileBytes - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  for (const { name, value } of raw) {
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof v !== 'object' || v === null) bad(`entry ${name} is not an object`);
    if (typeof v.dtype !== 'string' || !(v.dtype in DTYPE_BYTES))
      bad(`tensor ${name} has unknown dtype ${JSON.stringify(v.dtype)}`);
    const shape = v.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad(`tensor ${name} has shape ${JSON.stringify(shape)}, not a list of sizes`);
    const offsets = v.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    )
      bad(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes)
      bad(`tensor ${name} ends at data byte ${end}, past the ${dataBytes} bytes of data`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_BYTES[v.dtype]!;
    if (end - begin !== expected)
      bad(
        `tensor ${name} (${v.dtype} ${JSON.stringify(shape)}) needs ${expected} bytes but spans ${end - begin}`,
      );
    tensors.set(name, {
      name,
      dtype: v.dtype,
      shape: shape as number[],
      begin: dataStart + begin,
      end: dataStart + end,
    });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.begin < sorted[i - 1]!.end)
      bad(`tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`);
  }
  return tensors;
}

let f16Table: Float32Array | undefined;

/** fp32 value of every fp16 bit pattern (256 KiB, built on first use). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    f16Table[bits] =
      exponent === 0
        ? sign * mantissa * 2 ** -24
        : exponent === 31
          ? mantissa === 0
            ? sign * Number.POSITIVE_INFINITY
            : Number.NaN
          : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return f16Table;
}

const WIDEN: Record<string, ((bytes: Uint8Array) => Float32Array) | undefined> = {
  F32: (bytes) => new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
  F16: (bytes) => {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    const table = halfTable();
    const out = new Float32Array(halves.length);
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
    return out;
  },
  // bf16 is the top half of an fp32: shifting it back up is exact.
  BF16: (bytes) => {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    const out = new Uint32Array(halves.length);
    for (let i = 0; i < halves.length; i++) out[i] = halves[i]! << 16;
    return new Float32Array(out.buffer);
  },
};
