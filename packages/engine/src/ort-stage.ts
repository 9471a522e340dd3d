/**
 * One stage's inference over onnxruntime-node, in the calling thread. Use it
 * through `ThreadedStage` wherever an event loop must stay responsive:
 * onnxruntime-node's `run()` blocks its thread for the whole forward pass.
 */
import { availableParallelism } from 'node:os';
import {
  asSwarmBeeError,
  EngineClosedError,
  EngineFailedError,
  headDim,
  InvalidArgumentError,
  ShardInvalidError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import { SHARD_IO, type ShardGraph } from '@swarmbee/model';
import ort from 'onnxruntime-node';
import { attentionBias, logitIndex, positionIds } from './batch-feeds.js';
import { executionProviders } from './execution-provider.js';
import { type KvArena, KvCache } from './kv-cache.js';
import { Sampler } from './sampler.js';
import {
  batchWidth,
  DEFAULT_KV_BUDGET_BYTES,
  DEFAULT_MAX_SEQUENCES,
  type StageBatch,
  type StageEngine,
  type StageInfo,
  type StageOptions,
  type StageOutput,
  type StageStats,
} from './stage-engine.js';

type Feeds = Record<string, ort.Tensor>;

const idleCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks this thread for `ms` without using the CPU, as a slower device's compute
 * would hold its stage. Runs in the stage's own thread, so no event loop waits on it.
 */
function idleFor(ms: number): void {
  if (ms > 0) Atomics.wait(idleCell, 0, 0, ms);
}
type Fetches = Record<string, ort.Tensor | null>;

export class OrtStage implements StageEngine {
  readonly info: StageInfo;
  readonly #session: ort.InferenceSession;
  readonly #kv: KvCache;
  readonly #samplers = new Map<string, Sampler>();
  /** Extra idle time per forward pass, as a multiple of it (benchmark slow-down). */
  readonly #idleFactor: number;
  #forwards = 0;
  #forwardMsTotal = 0;
  #closed = false;

  private constructor(session: ort.InferenceSession, shard: ShardGraph, options: StageOptions) {
    const { config } = shard;
    this.#session = session;
    this.info = {
      layerStart: shard.layerStart,
      layerEnd: shard.layerEnd,
      isFirst: shard.layerStart === 0,
      isLast: shard.layerEnd === config.nLayers,
      dim: config.dim,
      vocabSize: config.vocabSize,
      maxSeqLen: config.maxSeqLen,
    };
    const speed = options.speedFactor ?? 1;
    if (!(speed > 0 && speed <= 1))
      throw new InvalidArgumentError(`speed factor must be in (0, 1], got ${speed}`);
    this.#idleFactor = 1 / speed - 1;
    this.#kv = new KvCache(
      shard.layerEnd - shard.layerStart,
      config.nKvHeads,
      headDim(config),
      config.maxSeqLen,
      options.kvBudgetBytes ?? DEFAULT_KV_BUDGET_BYTES,
      options.maxSequences ?? DEFAULT_MAX_SEQUENCES,
    );
  }

  static async create(shard: ShardGraph, options: StageOptions = {}): Promise<OrtStage> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpThreads ?? availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: executionProviders(options.executionProvider),
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      extra: {
        session: {
          model_external_initializers_file_folder_path: shard.externalDataDir,
          intra_op: { allow_spinning: options.allowSpinning === false ? '0' : '1' },
        },
      },
    };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(shard.onnx, sessionOptions);
    } catch (error) {
      throw new ShardInvalidError(
        `onnxruntime cannot load the shard for layers [${shard.layerStart}, ${shard.layerEnd}): ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return new OrtStage(session, shard, options);
  }

  async forward(batch: StageBatch): Promise<StageOutput> {
    if (this.#closed) throw new EngineClosedError('the stage engine is closed');
    const { rows } = batch;
    const width = this.#checkBatch(batch);
    const kvStart = performance.now();
    const { arena } = this.#kv.prepare(rows);
    const feeds: Feeds = {
      [SHARD_IO.positionIds]: new ort.Tensor('int64', positionIds(rows, width), [
        rows.length,
        width,
      ]),
    };
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
    // The arena is the past as it lies: spare capacity and other rows' history are masked.
    const pastWidth = arena.capacity;
    feeds[SHARD_IO.attentionBias] = new ort.Tensor(
      'float32',
      attentionBias(rows, width, pastWidth),
      [rows.length, 1, width, pastWidth + width],
    );
    this.#feedArena(arena, feeds, fetches);
    let kvMs = performance.now() - kvStart;

    const runStart = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.#session.run(feeds, fetches);
    } catch (error) {
      throw new EngineFailedError(
        `forward pass of layers [${this.info.layerStart}, ${this.info.layerEnd}) failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    idleFor(this.#idleFactor * (performance.now() - runStart));
    const forwardMs = performance.now() - runStart;
    const storeStart = performance.now();
    this.#storeNewRows(arena, batch, width, results);
    this.#kv.commit(rows);
    kvMs += performance.now() - storeStart;
    this.#forwards++;
    this.#forwardMsTotal += forwardMs;
    const timing = { forwardMs, kvMs };
    if (!this.info.isLast) {
      return {
        kind: 'hidden',
        hidden: results[SHARD_IO.hiddenOut]!.data as Float32Array,
        width,
        timing,
      };
    }
    return this.#sample(
      batch,
      results[SHARD_IO.logits]!.data as Float32Array,
      logitsWhich === 'all' ? width : 1,
      timing,
    );
  }

  #checkBatch(batch: StageBatch): number {
    const { rows } = batch;
    if (rows.length === 0) throw new InvalidArgumentError('a micro-batch needs at least one row');
    const seen = new Set<string>();
    for (const row of rows) {
      if (
        !Number.isInteger(row.count) ||
        row.count < 1 ||
        !Number.isInteger(row.start) ||
        row.start < 0
      ) {
        throw new InvalidArgumentError(
          `row ${row.seqId}: start ${row.start} and count ${row.count} must be integers, count >= 1`,
        );
      }
      if (seen.has(row.seqId))
        throw new InvalidArgumentError(`sequence ${row.seqId} appears twice in one micro-batch`);
      seen.add(row.seqId);
    }
    const width = batchWidth(rows);
    if (this.info.isFirst) {
      if (batch.tokens?.length !== rows.length * width) {
        throw new InvalidArgumentError(
          `the first stage needs ${rows.length}x${width} token ids, got ${batch.tokens?.length ?? 'none'}`,
        );
      }
      rows.forEach((row, r) => {
        for (let i = 0; i < row.count; i++) {
          const id = batch.tokens![r * width + i]!;
          if (id < 0n || id >= BigInt(this.info.vocabSize)) {
            throw new TokenOutOfVocabularyError(
              `token id ${id} (sequence ${row.seqId}) is outside the vocabulary of ${this.info.vocabSize} tokens`,
            );
          }
        }
      });
    } else if (batch.hidden?.length !== rows.length * width * this.info.dim) {
      throw new InvalidArgumentError(
        `stage needs hidden states of ${rows.length}x${width}x${this.info.dim}, got ${batch.hidden?.length ?? 'none'} values`,
      );
    }
    return width;
  }

  /** The arena's buffers are the `past_key` / `past_value` inputs, as they lie. */
  #feedArena(arena: KvArena, feeds: Feeds, fetches: Fetches): void {
    const dims = [arena.rows.length, this.#kv.kvHeads, arena.capacity, this.#kv.headDim];
    for (let l = 0; l < this.#kv.layers; l++) {
      const layer = this.info.layerStart + l;
      feeds[SHARD_IO.pastKey(layer)] = new ort.Tensor('float32', arena.keys[l]!, dims);
      feeds[SHARD_IO.pastValue(layer)] = new ort.Tensor('float32', arena.values[l]!, dims);
      fetches[SHARD_IO.newKey(layer)] = null;
      fetches[SHARD_IO.newValue(layer)] = null;
    }
  }

  /** Writes each row's new keys and values ([B, kvHeads, T, headDim]) after its past. */
  #storeNewRows(
    arena: KvArena,
    batch: StageBatch,
    width: number,
    results: ort.InferenceSession.OnnxValueMapType,
  ): void {
    const { kvHeads, headDim: hd } = this.#kv;
    for (let l = 0; l < this.#kv.layers; l++) {
      const layer = this.info.layerStart + l;
      const keys = results[SHARD_IO.newKey(layer)]!.data as Float32Array;
      const values = results[SHARD_IO.newValue(layer)]!.data as Float32Array;
      batch.rows.forEach((row, r) => {
        for (let h = 0; h < kvHeads; h++) {
          const from = (r * kvHeads + h) * width * hd;
          const to = ((r * kvHeads + h) * arena.capacity + row.start) * hd;
          arena.keys[l]!.set(keys.subarray(from, from + row.count * hd), to);
          arena.values[l]!.set(values.subarray(from, from + row.count * hd), to);
        }
      });
    }
  }

  #sample(
    batch: StageBatch,
    logits: Float32Array,
    perRow: number,
    timing: StageOutput['timing'],
  ): StageOutput {
    const vocab = this.info.vocabSize;
    const tokens = new Int32Array(batch.rows.length).fill(-1);
    const wantLogprobs = batch.rows.some((row) => row.logprobs);
    const logprobs = wantLogprobs ? new Float32Array(batch.rows.length) : undefined;
    batch.rows.forEach((row, r) => {
      if (!row.sampling) return;
      let sampler = this.#samplers.get(row.seqId);
      if (!sampler || row.start === 0) {
        sampler = new Sampler(row.sampling);
        this.#samplers.set(row.seqId, sampler);
      }
      const lastPosition = perRow === 1 ? 0 : row.count - 1;
      const offset = (r * perRow + lastPosition) * vocab;
      const sample = sampler.sample(logits.subarray(offset, offset + vocab), row.logprobs === true);
      tokens[r] = sample.token;
      if (logprobs) logprobs[r] = sample.logprob;
    });
    const output: StageOutput = { kind: 'tokens', tokens, timing };
    if (logprobs) output.logprobs = logprobs;
    if (batch.logits) output.logits = logits;
    return output;
  }

  async release(seqIds: string[]): Promise<void> {
    for (const id of seqIds) {
      this.#kv.release(id);
      this.#samplers.delete(id);
    }
  }

  async stats(): Promise<StageStats> {
    return {
      forwards: this.#forwards,
      forwardMsTotal: this.#forwardMsTotal,
      sequences: this.#kv.size,
      kvBytes: this.#kv.bytes,
      kvBudgetBytes: this.#kv.budgetBytes,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#session.release();
    } catch (error) {
      throw asSwarmBeeError(error);
    }
  }
}
