/**
 * Writes a safetensors file of any size tensor by tensor, chunk by chunk: the header
 * (every tensor's dtype, shape and byte range) is known from the shapes alone, so it is
 * written first and the data appended in order, never held in memory.
 */
import { type FileHandle, open } from 'node:fs/promises';

/** Element sizes of the dtypes this writer emits. */
export const STREAM_DTYPE_BYTES = { F32: 4, BF16: 2, F16: 2 } as const;

export type StreamDtype = keyof typeof STREAM_DTYPE_BYTES;

export interface PlannedTensor {
  name: string;
  dtype: StreamDtype;
  shape: number[];
}

export const tensorBytes = (t: PlannedTensor): number =>
  t.shape.reduce((a, b) => a * b, 1) * STREAM_DTYPE_BYTES[t.dtype];

/** The header bytes of a file holding `tensors` in this order, padded to 8 bytes as the format asks. */
export function safetensorsHeader(
  tensors: readonly PlannedTensor[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const text = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  text.set(json);
  const out = new Uint8Array(8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

/** An open file being filled: `append` each tensor's bytes in header order, then `close`. */
export class SafetensorsStreamWriter {
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #tensors: readonly PlannedTensor[];
  #index = 0;
  #left: number;

  private constructor(path: string, handle: FileHandle, tensors: readonly PlannedTensor[]) {
    this.path = path;
    this.#handle = handle;
    this.#tensors = tensors;
    this.#left = tensors[0] ? tensorBytes(tensors[0]) : 0;
  }

  static async create(
    path: string,
    tensors: readonly PlannedTensor[],
    metadata: Record<string, string> = {},
  ): Promise<SafetensorsStreamWriter> {
    const handle = await open(path, 'w');
    try {
      await handle.write(safetensorsHeader(tensors, metadata));
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new SafetensorsStreamWriter(path, handle, tensors);
  }

  /** The tensor the next bytes belong to. */
  get current(): PlannedTensor | undefined {
    return this.#tensors[this.#index];
  }

  /** Appends bytes of the current tensor; a chunk never spans two tensors. */
  async append(bytes: Uint8Array): Promise<void> {
    const tensor = this.current;
    if (!tensor || bytes.byteLength > this.#left)
      throw new Error(
        `internal: ${this.path}: ${bytes.byteLength} bytes given with ${this.#left} left of ${tensor?.name ?? 'no tensor'}`,
      );
    await this.#handle.write(bytes);
    this.#left -= bytes.byteLength;
    while (this.#left === 0 && this.#index < this.#tensors.length) {
      this.#index++;
      const next = this.#tensors[this.#index];
      this.#left = next ? tensorBytes(next) : 0;
      if (next && this.#left > 0) break;
    }
  }

  /** Closes the file; throws if a tensor was left short. */
  async close(): Promise<void> {
    await this.#handle.close();
    if (this.#index < this.#tensors.length)
      throw new Error(`internal: ${this.path}: closed before tensor ${this.current?.name}`);
  }

  /** Closes without checking (on the way out of a failure). */
  async abandon(): Promise<void> {
    await this.#handle.close();
  }
}
