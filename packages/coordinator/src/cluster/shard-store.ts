/**
 * The coordinator's shards: written once per (model, layer range) into its
 * cache dir and offered to workers by content address.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type KvDtype, type LlamaConfig } from '@swarmbee/core';
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
  servedConfig,
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

  /** KV-cache element type of the shards built. */
  readonly kvDtype: KvDtype;
  /** A LoRA adapter merged into every shard's weights as it is built. */
  readonly adapter?: LoraAdapter;
  /** Context the shards serve, tokens (a Llama shard's RoPE tables hold this many positions). */
  readonly context: number;

  constructor(
    readonly model: ModelDir,
    readonly cacheDir: string,
    options: {
      /** Default `float32`. */
      kvDtype?: KvDtype;
      /** Default: none. */
      adapter?: LoraAdapter;
      /** Default the model's whole context (`maxSeqLen`). */
      context?: number;
    } = {},
  ) {
    this.kvDtype = options.kvDtype ?? 'float32';
    if (options.adapter) this.adapter = options.adapter;
    const { maxSeqLen } = model.manifest.config;
    this.context = options.context ?? maxSeqLen;
    if (model.manifest.architecture !== 'onnx-decoder')
      servedConfig(model.manifest.config as LlamaConfig, this.context);
    else if (this.context > maxSeqLen)
      throw new InvalidArgumentError(
        `a context of ${this.context} tokens passes ${model.manifest.name}'s ${maxSeqLen}`,
      );
    this.modelHash = options.adapter
      ? adaptedModelHash(model.manifest.modelHash, adapterHash(options.adapter))
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
      shardDirName(range, this.kvDtype, this.#shardContext()),
    );
    let pending = this.#building.get(path);
    if (!pending) {
      pending = openShard(path)
        .then(({ manifest }) => manifest)
        .catch(async () => {
          // Missing or unreadable: build it afresh.
          await rm(path, { recursive: true, force: true });
          const context = this.#shardContext();
          return writeShard(this.model, range, path, progress, {
            kvDtype: this.kvDtype,
            ...(context === undefined ? {} : { context }),
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

  /** The context a Llama shard is cut to; undefined when it keeps the model's (or cannot be cut). */
  #shardContext(): number | undefined {
    const { manifest } = this.model;
    const whole =
      manifest.architecture === 'onnx-decoder' || this.context === manifest.config.maxSeqLen;
    return whole ? undefined : this.context;
  }
}

/**
 * The directory a shard is filed under in the coordinator's cache: its layer range, then
 * `-kv16` for an fp16 cache and `-ctx<N>` for RoPE tables cut to N positions.
 */
export function shardDirName(range: LayerRange, kvDtype: KvDtype, context?: number): string {
  const kv = kvDtype === 'float16' ? '-kv16' : '';
  return `${range.start}-${range.end}${kv}${context === undefined ? '' : `-ctx${context}`}`;
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
