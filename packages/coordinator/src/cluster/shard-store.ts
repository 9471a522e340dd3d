/**
 * The coordinator's shards: written once per (model, layer range) into its
 * cache dir and offered to workers by content address.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KvDtype } from '@swarmbee/core';
import {
  adaptedModelHash,
  adapterHash,
  type LayerRange,
  type LoraAdapter,
  type ModelDir,
  openShard,
  type ProgressFn,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  type ShardManifest,
  sha256,
  writeShard,
} from '@swarmbee/model';

export interface StoredShard {
  path: string;
  manifest: ShardManifest;
  /** Every file a worker needs: the graph, its weights and shard.json (which names the rest). */
  files: { name: string; bytes: number; sha256: string }[];
}

export class ShardStore {
  readonly #building = new Map<string, Promise<StoredShard>>();
  /** The hash the shards are filed under: the model's, or the adapted model's. */
  readonly modelHash: string;

  constructor(
    readonly model: ModelDir,
    readonly cacheDir: string,
    /** KV-cache element type of the shards built. Default `float32`. */
    readonly kvDtype: KvDtype = 'float32',
    /** A LoRA adapter merged into every shard's weights as it is built. Default: none. */
    readonly adapter?: LoraAdapter,
  ) {
    this.modelHash = adapter
      ? adaptedModelHash(model.manifest.modelHash, adapterHash(adapter))
      : model.manifest.modelHash;
  }

  /** The shard for `range`, built on first use. */
  ensure(range: LayerRange, progress?: ProgressFn): Promise<StoredShard> {
    const { modelHash } = this;
    const path = join(
      this.cacheDir,
      'shards',
      `v${SHARD_FORMAT_VERSION}`,
      modelHash,
      `${range.start}-${range.end}${this.kvDtype === 'float16' ? '-kv16' : ''}`,
    );
    let pending = this.#building.get(path);
    if (!pending) {
      pending = openShard(path)
        .then(({ manifest }) => manifest)
        .catch(async () => {
          // Missing or unreadable: build it afresh.
          await rm(path, { recursive: true, force: true });
          return writeShard(this.model, range, path, progress, {
            kvDtype: this.kvDtype,
            ...(this.adapter ? { adapter: this.adapter } : {}),
          });
        })
        .then(async (manifest) => {
          const description = await readFile(join(path, SHARD_MANIFEST_FILE));
          const described = {
            name: SHARD_MANIFEST_FILE,
            bytes: description.length,
            sha256: sha256(description),
          };
          return { path, manifest, files: [...manifest.files, described] };
        });
      this.#building.set(path, pending);
      pending.catch(() => this.#building.delete(path));
    }
    return pending;
  }
}

/** Reads a shard file in chunks of `chunkBytes`, from byte `start`. */
export async function* fileChunks(
  path: string,
  chunkBytes: number,
  start = 0,
): AsyncGenerator<{ offset: number; data: Uint8Array }> {
  let offset = start;
  for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes, start })) {
    const data = chunk as Buffer;
    yield { offset, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    offset += data.byteLength;
  }
}
