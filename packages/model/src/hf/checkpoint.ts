/**
 * A Hugging Face checkpoint dir's weights: one `model.safetensors`, or shards
 * listed by `model.safetensors.index.json`. Tensors are found by name across the
 * files and streamed as fp32.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HfCheckpointInvalidError } from '@swarmbee/core';
import { type SafetensorsEntry, SafetensorsFile } from './safetensors.js';

export const HF_CONFIG_FILE = 'config.json';
export const HF_GENERATION_CONFIG_FILE = 'generation_config.json';
export const HF_SAFETENSORS_FILE = 'model.safetensors';
export const HF_SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

export class HfWeights {
  readonly dir: string;
  /** The safetensors files, in the order first needed. */
  readonly files: readonly string[];
  readonly #byTensor: Map<string, SafetensorsFile>;
  readonly #open: SafetensorsFile[];

  private constructor(dir: string, files: string[], open: SafetensorsFile[]) {
    this.dir = dir;
    this.files = files;
    this.#open = open;
    this.#byTensor = new Map();
    for (const file of open) for (const name of file.tensors.keys()) this.#byTensor.set(name, file);
  }

  /** Opens the weights of a checkpoint dir: the index's shards, or the single file. */
  static async open(dir: string): Promise<HfWeights> {
    const entries = await readdir(dir).catch((error: Error) => {
      throw new HfCheckpointInvalidError(`cannot read ${dir}: ${error.message}`, { cause: error });
    });
    let files: string[];
    if (entries.includes(HF_SAFETENSORS_INDEX_FILE)) {
      files = await indexedFiles(dir);
    } else if (entries.includes(HF_SAFETENSORS_FILE)) {
      files = [HF_SAFETENSORS_FILE];
    } else {
      const other = entries.filter((e) => /\.(bin|pt|pth|gguf|safetensors)$/.test(e));
      throw new HfCheckpointInvalidError(
        `${dir} has neither ${HF_SAFETENSORS_FILE} nor ${HF_SAFETENSORS_INDEX_FILE}` +
          (other.length > 0
            ? ` (found ${other.join(', ')}; SwarmBee reads Hugging Face safetensors checkpoints)`
            : ''),
      );
    }
    const open: SafetensorsFile[] = [];
    try {
      for (const file of files) open.push(await SafetensorsFile.open(join(dir, file)));
    } catch (error) {
      await Promise.all(open.map((f) => f.close()));
      throw error;
    }
    return new HfWeights(dir, files, open);
  }

  /** Every tensor name across the files. */
  names(): IterableIterator<string> {
    return this.#byTensor.keys();
  }

  entry(name: string): SafetensorsEntry | undefined {
    return this.#byTensor.get(name)?.entry(name);
  }

  /** Checks that `name` exists with `shape`, naming the file and what was found otherwise. */
  expect(name: string, shape: number[]): void {
    const entry = this.entry(name);
    if (!entry)
      throw new HfCheckpointInvalidError(
        `${this.dir}: the checkpoint (${this.files.join(', ')}) has no tensor ${name}, which config.json implies`,
      );
    if (entry.shape.join(',') !== shape.join(','))
      throw new HfCheckpointInvalidError(
        `${this.#byTensor.get(name)!.path}: tensor ${name} has shape [${entry.shape.join(', ')}]; config.json implies [${shape.join(', ')}]`,
      );
  }

  /** The file that holds tensor `name`. */
  fileOf(name: string): string | undefined {
    return this.#byTensor.get(name)?.path;
  }

  /** Streams one tensor as fp32 chunks. */
  read(name: string): AsyncGenerator<Float32Array> {
    const file = this.#byTensor.get(name);
    if (!file)
      throw new HfCheckpointInvalidError(`${this.dir}: the checkpoint has no tensor ${name}`);
    return file.readFloat32(name);
  }

  /** Streams several tensors back to back, as one fused tensor's rows. */
  async *concat(names: string[]): AsyncGenerator<Float32Array> {
    for (const name of names) yield* this.read(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.#open.map((f) => f.close()));
  }
}

async function indexedFiles(dir: string): Promise<string[]> {
  const path = join(dir, HF_SAFETENSORS_INDEX_FILE);
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(await readFile(path, 'utf8')) as { weight_map?: unknown };
  } catch (error) {
    throw new HfCheckpointInvalidError(
      `${path} is not readable JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null)
    throw new HfCheckpointInvalidError(`${path} has no weight_map`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const file of files) {
    // Shard names are plain file names beside the index; anything else is refused.
    if (
      typeof file !== 'string' ||
      file.includes('/') ||
      file.includes('\\') ||
      file.startsWith('.')
    )
      throw new HfCheckpointInvalidError(`${path} maps tensors to ${JSON.stringify(file)}`);
  }
  return files as string[];
}
