/**
 * Writes GGUF files for tests — independently of the model package's reader: the format
 * as its specification lays it out (magic, version, counts, typed key/values, tensor infos,
 * aligned data). `copyGguf` re-writes a llama.cpp-made file with edits (other keys, other
 * tensors, a lie in the header) to make the malformed and other-architecture files tests need.
 */

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { type GgufEntry, type GgufFile, openGguf } from '@swarmbee/model';

export interface GgufKv {
  key: string;
  /** GGUF value type name: uint8 … float64, bool, string, array. */
  type: string;
  value: unknown;
  /** Element type of an array. */
  elementType?: string;
}

export interface GgufTensorData {
  name: string;
  /** ggml order: columns first. */
  ne: number[];
  typeId: number;
  data: Uint8Array;
  /** Overrides the data offset written in the header (relative to the data section). */
  offset?: number;
}

export interface GgufLayout {
  version?: number;
  kv: GgufKv[];
  tensors: GgufTensorData[];
  alignment?: number;
  /** Write counts and lengths as 32 bits (GGUF v1's layout), whatever the version says. */
  counts32?: boolean;
}

const TYPE_IDS: Record<string, number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  constructor(readonly counts32: boolean) {}
  push(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(n: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  u64(n: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  count(n: number) {
    if (this.counts32) this.u32(n);
    else this.u64(n);
  }
  string(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.count(b.length);
    this.push(b);
  }
  value(type: string, value: unknown, elementType?: string) {
    const b = Buffer.alloc(8);
    switch (type) {
      case 'uint8':
        b.writeUInt8(Number(value));
        return this.push(b.subarray(0, 1));
      case 'int8':
        b.writeInt8(Number(value));
        return this.push(b.subarray(0, 1));
      case 'uint16':
        b.writeUInt16LE(Number(value));
        return this.push(b.subarray(0, 2));
      case 'int16':
        b.writeInt16LE(Number(value));
        return this.push(b.subarray(0, 2));
      case 'uint32':
        b.writeUInt32LE(Number(value));
        return this.push(b.subarray(0, 4));
      case 'int32':
        b.writeInt32LE(Number(value));
        return this.push(b.subarray(0, 4));
      case 'float32':
        b.writeFloatLE(Number(value));
        return this.push(b.subarray(0, 4));
      case 'bool':
        b.writeUInt8(value ? 1 : 0);
        return this.push(b.subarray(0, 1));
      case 'uint64':
        b.writeBigUInt64LE(BigInt(value as number));
        return this.push(b);
      case 'int64':
        b.writeBigInt64LE(BigInt(value as number));
        return this.push(b);
      case 'float64':
        b.writeDoubleLE(Number(value));
        return this.push(b);
      case 'string':
        return this.string(String(value));
      case 'array': {
        const list = value as unknown[];
        this.u32(TYPE_IDS[elementType!]!);
        this.count(list.length);
        for (const item of list) this.value(elementType!, item);
        return;
      }
    }
    throw new Error(`unknown GGUF value type ${type}`);
  }
}

/** The bytes of a GGUF file. */
export function ggufBytes(layout: GgufLayout): Buffer {
  const alignment = layout.alignment ?? 32;
  const out = new Bytes(layout.counts32 === true);
  out.push(Buffer.from('GGUF', 'latin1'));
  out.u32(layout.version ?? 3);
  out.count(layout.tensors.length);
  out.count(layout.kv.length);
  for (const kv of layout.kv) {
    out.string(kv.key);
    out.u32(TYPE_IDS[kv.type]!);
    out.value(kv.type, kv.value, kv.elementType);
  }
  const pad = (n: number) => (alignment - (n % alignment)) % alignment;
  let offset = 0;
  const offsets = layout.tensors.map((t) => {
    const at = offset;
    offset += t.data.length + pad(t.data.length);
    return t.offset ?? at;
  });
  layout.tensors.forEach((t, i) => {
    out.string(t.name);
    out.u32(t.ne.length);
    for (const n of t.ne) out.count(n);
    out.u32(t.typeId);
    out.u64(offsets[i]!);
  });
  out.push(Buffer.alloc(pad(out.length)));
  for (const t of layout.tensors) {
    out.push(Buffer.from(t.data));
    out.push(Buffer.alloc(pad(t.data.length)));
  }
  return Buffer.concat(out.parts);
}

export async function writeGguf(path: string, layout: GgufLayout): Promise<void> {
  await writeFile(path, ggufBytes(layout));
}

/** An existing GGUF's keys and tensors (data included), to edit and write back. */
export async function readGgufLayout(path: string): Promise<GgufLayout & { file: GgufFile }> {
  const file = await openGguf(path);
  const bytes = readFileSync(path);
  const kv = [...file.metadata].map(([key, entry]: [string, GgufEntry]) => ({
    key,
    type: entry.type,
    value: entry.value,
    ...(entry.elementType ? { elementType: entry.elementType } : {}),
  }));
  const tensors = file.tensors.map((t) => ({
    name: t.name,
    ne: [...t.ne],
    typeId: t.typeId,
    data: new Uint8Array(bytes.subarray(t.offset, t.offset + t.bytes)),
  }));
  return { file, version: file.version, kv, tensors, alignment: file.alignment };
}

/** Sets (or adds) a key. */
export function setKv(layout: GgufLayout, kv: GgufKv): void {
  const i = layout.kv.findIndex((k) => k.key === kv.key);
  if (i >= 0) layout.kv[i] = kv;
  else layout.kv.push(kv);
}
