/**
 * One stage's inference over onnxruntime-node, in the calling thread. Use it
 * through `ThreadedStage` wherever an event loop must stay responsive:
 * onnxruntime-node's `run()` blocks its thread for the whole forward pass.
 */
import { headDim, layerWindow, ShardInvalidError } from '@swarmbee/core';
import type { LlamaShardGraph, ShardGraph } from '@swarmbee/model';
import { SHARD_IO, shardBiasInputs } from '@swarmbee/model/graph-io';
import ort from 'onnxruntime-node';
import { attentionBiasTensors, fedPastWidth, logitIndex, positionIds } from './batch-feeds.js';
import { type KvArena, KvCache, type KvElements } from './kv-cache.js';
import { storeLayerRows } from './kv-rows.js';
import { ShardStage } from './shard-stage.js';
import {
  DEFAULT_KV_BUDGET_BYTES,
  DEFAULT_MAX_SEQUENCES,
  type StageBatch,
  type StageOptions,
  type StageOutput,
  type StageTiming,
} from './stage-engine.js';
import { checkBatch, createShardSession } from './stage-session.js';

type Feeds = Record<string, ort.Tensor>;

type Fetches = Record<string, ort.Tensor | null>;

export class OrtStage extends ShardStage<KvElements> {
  /** Which attention-bias inputs the shard takes (full-context layers', windowed layers'). */
  readonly #biases: { full: boolean; window: boolean };
  /** The sliding window of the shard's windowed layers, in positions. */
  readonly #window: number | undefined;
  /**
   * Per arena, its buffers wrapped as the `past_key` / `past_value` feeds: an arena's
   * buffers and shape never change, so the tensors are made once, not every step.
   */
  readonly #pastFeeds = new WeakMap<KvArena<KvElements>, Feeds>();
  /** Element type of the cache (the shard's `past_*` inputs and `new_*` outputs). */
  readonly #kvDtype: 'float32' | 'float16';

  private constructor(
    session: ort.InferenceSession,
    shard: LlamaShardGraph,
    options: StageOptions,
  ) {
    const { config } = shard;
    const windows = Array.from({ length: shard.layerEnd - shard.layerStart }, (_, l) =>
      layerWindow(config, shard.layerStart + l),
    );
    super(
      session,
      shard,
      new KvCache(
        shard.layerEnd - shard.layerStart,
        config.nKvHeads,
        headDim(config),
        config.maxSeqLen,
        options.kvBudgetBytes ?? DEFAULT_KV_BUDGET_BYTES,
        options.maxSequences ?? DEFAULT_MAX_SEQUENCES,
        { windows, dtype: shard.kvDtype ?? 'float32' },
      ),
    );
    this.#kvDtype = shard.kvDtype ?? 'float32';
    this.#biases = shardBiasInputs(config, shard.layerStart, shard.layerEnd);
    this.#window = windows.find((w) => w !== undefined);
  }

  /** Runs SwarmBee's own Llama shards; {@link createStageEngine} picks the engine for any shard. */
  static async create(shard: ShardGraph, options: StageOptions = {}): Promise<OrtStage> {
    if (shard.kind !== 'llama') {
      throw new ShardInvalidError(
        `OrtStage runs SwarmBee's Llama shards; this is an ${shard.kind} shard (use createStageEngine)`,
      );
    }
    if (shard.attention === 'fused') {
      // Measured slower at decode on onnxruntime-node 1.30 (docs/BENCHMARKS.md, engine section):
      // its binding copies every fetched output, so a cache the graph returns is copied whole.
      throw new ShardInvalidError(
        `OrtStage runs shards with decomposed attention; this shard of layers [${shard.layerStart}, ${shard.layerEnd}) attends by GroupQueryAttention, which onnxruntime-node returns only by copying the whole cache each step`,
      );
    }
    return new OrtStage(await createShardSession(shard, options), shard, options);
  }

  async forward(batch: StageBatch): Promise<StageOutput> {
    this.checkOpen();
    const { rows } = batch;
    const stageStart = performance.now();
    const width = checkBatch(batch, this.info);
    const kvStart = performance.now();
    const { arena } = this.kv.prepare(rows);
    const feedsStart = performance.now();
    let kvMs = feedsStart - kvStart;
    const feeds: Feeds = {
      [SHARD_IO.positionIds]: new ort.Tensor('int64', positionIds(rows, width), [
        rows.length,
        width,
      ]),
    };
    if (this.info.adapters > 0)
      feeds[SHARD_IO.adapterIds] = new ort.Tensor(
        'int64',
        BigInt64Array.from(rows, (row) => BigInt(row.adapter ?? 0)),
        [rows.length],
      );
    if (this.info.isFirst)
      feeds[SHARD_IO.inputIds] = new ort.Tensor('int64', batch.tokens!, [rows.length, width]);
    else
      feeds[SHARD_IO.hiddenIn] = new ort.Tensor('float32', batch.hidden!, [
        rows.length,
        width,
        this.info.dim,
      ]);
    const logitsWhich = batch.logits ?? 'last';
    if (this.info.isLast) {
      const rowsOut = logitsWhich === 'all' ? width : 1;
      feeds[SHARD_IO.logitIndex] = new ort.Tensor('int64', logitIndex(rows, width, logitsWhich), [
        rows.length,
        rowsOut,
        1,
      ]);
    }
    const fetches: Fetches = { [this.info.isLast ? SHARD_IO.logits : SHARD_IO.hiddenOut]: null };
    // The graph attends over every past position it is fed, masked or not.
    const pastWidth = fedPastWidth(rows, width, arena.capacity);
    const bias = attentionBiasTensors(rows, width, pastWidth, {
      full: this.#biases.full,
      window: this.#window,
    });
    if (bias.full) feeds[SHARD_IO.attentionBias] = bias.full;
    if (bias.window) feeds[SHARD_IO.attentionBiasWindow] = bias.window;
    const arenaStart = performance.now();
    const feedsMs = arenaStart - feedsStart;
    this.#feedArena(arena, feeds, fetches, pastWidth);
    kvMs += performance.now() - arenaStart;

    const { results, forwardMs } = await this.run(feeds, fetches);
    const storeStart = performance.now();
    this.#storeNewRows(arena, batch, width, results);
    this.kv.commit(rows);
    kvMs += performance.now() - storeStart;
    const timing: StageTiming = { forwardMs, kvMs, feedsMs };
    if (!this.info.isLast) {
      timing.stageMs = performance.now() - stageStart;
      return {
        kind: 'hidden',
        hidden: results[SHARD_IO.hiddenOut]!.data as Float32Array,
        width,
        timing,
      };
    }
    const sampleStart = performance.now();
    const output = this.sampler.sample(
      batch,
      results[SHARD_IO.logits]!.data as Float32Array,
      logitsWhich === 'all' ? width : 1,
      timing,
    );
    const end = performance.now();
    timing.sampleMs = end - sampleStart;
    timing.stageMs = end - stageStart;
    return output;
  }

  /**
   * The `past_key` / `past_value` inputs, each layer's past as `KvCache.fedPast` gives it:
   * tensors over the arena's own buffers are made once per arena.
   */
  #feedArena(arena: KvArena<KvElements>, feeds: Feeds, fetches: Fetches, pastWidth: number): void {
    let whole = this.#pastFeeds.get(arena);
    if (!whole) {
      whole = {};
      for (let l = 0; l < this.kv.layers; l++) {
        const layer = this.info.layerStart + l;
        const dims = this.#pastDims(arena, this.kv.slots(arena, l));
        whole[SHARD_IO.pastKey(layer)] = this.#kvTensor(arena.keys[l]!, dims);
        whole[SHARD_IO.pastValue(layer)] = this.#kvTensor(arena.values[l]!, dims);
      }
      this.#pastFeeds.set(arena, whole);
    }
    for (let l = 0; l < this.kv.layers; l++) {
      const layer = this.info.layerStart + l;
      const [key, value] = [SHARD_IO.pastKey(layer), SHARD_IO.pastValue(layer)];
      const past = this.kv.fedPast(arena, l, pastWidth);
      const dims = this.#pastDims(arena, past.positions);
      feeds[key] = past.inPlace ? whole[key]! : this.#kvTensor(past.keys, dims);
      feeds[value] = past.inPlace ? whole[value]! : this.#kvTensor(past.values, dims);
      fetches[SHARD_IO.newKey(layer)] = null;
      fetches[SHARD_IO.newValue(layer)] = null;
    }
  }

  #pastDims(arena: KvArena<KvElements>, positions: number): number[] {
    return [arena.rows.length, this.kv.kvHeads, positions, this.kv.headDim];
  }

  #kvTensor(data: KvElements, dims: number[]): ort.Tensor {
    return this.#kvDtype === 'float16'
      ? new ort.Tensor('float16', data as Uint16Array, dims)
      : new ort.Tensor('float32', data as Float32Array, dims);
  }

  /** Writes each layer's new keys and values after each row's past (see `storeLayerRows`). */
  #storeNewRows(
    arena: KvArena<KvElements>,
    batch: StageBatch,
    width: number,
    results: ort.InferenceSession.OnnxValueMapType,
  ): void {
    for (let l = 0; l < this.kv.layers; l++) {
      const layer = this.info.layerStart + l;
      storeLayerRows(
        this.kv,
        arena,
        l,
        batch.rows,
        width,
        results[SHARD_IO.newKey(layer)]!.data as KvElements,
        results[SHARD_IO.newValue(layer)]!.data as KvElements,
      );
    }
  }
}
