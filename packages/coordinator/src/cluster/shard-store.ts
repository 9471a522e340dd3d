/**
 * The coordinator's shards: written once per (model, layer range) into its
 * cache dir and offered to workers by content address.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  InvalidArgumentError,
  type KvDtype,
  type LlamaConfig,
  TensorSplitError,
} from '@swarmbee/core';
import {
  adaptedModelHash,
  adapterHash,
  type LayerRange,
  type LoraAdapter,
  type ModelDir,
  type NamedAdapter,
  openShard,
  type ProgressFn,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  type ShardManifest,
  type SliceShardManifest,
  servedAdaptersId,
  servedConfig,
  sha256,
  sliceShardId,
  type TensorSlice,
  writeShard,
  writeSliceShard,
} from '@swarmbee/model';

export interface StoredShard {
  path: string;
  /** A stage's shard, or a tensor-parallel member's slice shard; both name their id and files. */
  manifest: Pick<ShardManifest, 'shardId' | 'files'> | SliceShardManifest;
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
  /** LoRA adapters every shard serves unmerged, in slot order. */
  readonly adapters: readonly NamedAdapter[];
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
      /** Default: none. */
      adapters?: readonly NamedAdapter[];
      /** Default the model's whole context (`maxSeqLen`). */
      context?: number;
    } = {},
  ) {
    this.kvDtype = options.kvDtype ?? 'float32';
    if (options.adapter) this.adapter = options.adapter;
    this.adapters = options.adapters ?? [];
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
      : this.adapters.length > 0
        ? adaptedModelHash(model.manifest.modelHash, servedAdaptersId(this.adapters))
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
    return this.#once(
      path,
      () => {
        const context = this.#shardContext();
        return writeShard(this.model, range, path, progress, {
          kvDtype: this.kvDtype,
          ...(context === undefined ? {} : { context }),
          ...(this.adapter ? { adapter: this.adapter } : {}),
          ...(this.adapters.length > 0 ? { adapters: this.adapters } : {}),
        });
      },
      async (at) => (await openShard(at)).manifest,
    );
  }

  /**
   * Member `slice.rank`'s shard of a tensor-parallel stage over `range`, built on first use
   * (content-addressed by `sliceShardId`). Members keep an fp32 KV cache and the model's
   * own weights: a `--kv-dtype float16` or an adapter is refused (TENSOR_SPLIT).
   */
  ensureSlice(range: LayerRange, slice: TensorSlice): Promise<StoredShard> {
    if (this.adapter || this.adapters.length > 0)
      throw new TensorSplitError(
        'a tensor-parallel stage cannot serve an adapter: member shards are built from the base weights',
      );
    const { start, end } = range;
    const { degree, rank, kvHeads, columns, vocab } = slice;
    const rows = vocab ? `-v${vocab.start}-${vocab.end}` : '';
    const name = `${start}-${end}-tp${degree}.${rank}-h${kvHeads.start}-${kvHeads.end}-c${columns.start}-${columns.end}${rows}`;
    const path = join(this.cacheDir, 'shards', `v${SHARD_FORMAT_VERSION}`, this.modelHash, name);
    return this.#once(path, () =>
      writeSliceShard(this.model, range, slice, path, { kvDtype: this.kvDtype }),
    );
  }

  /** The shard at `path`: opened if written and whole, else built by `build`; one build at a time. */
  #once(
    path: string,
    build: () => Promise<StoredShard['manifest']>,
    open: (path: string) => Promise<StoredShard['manifest']> = openSliceManifest,
  ): Promise<StoredShard> {
    let pending = this.#building.get(path);
    if (!pending) {
      pending = open(path)
        .catch(async () => {
          // Missing or unreadable: build it afresh.
          await rm(path, { recursive: true, force: true });
          return build();
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

/** A written member shard's manifest; throws when it is not one, or its id does not hold. */
async function openSliceManifest(path: string): Promise<SliceShardManifest> {
  const manifest = JSON.parse(
    await readFile(join(path, SHARD_MANIFEST_FILE), 'utf8'),
  ) as SliceShardManifest;
  if (
    manifest.kind !== 'llama-slice' ||
    sliceShardId(manifest.slice, manifest.files) !== manifest.shardId
  )
    throw new InvalidArgumentError(`${path} holds no member shard`);
  return manifest;
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
