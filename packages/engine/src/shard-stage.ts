/**
 * What every onnxruntime stage engine shares, whatever graph it runs: the stage's
 * place in the model, its KV cache and sampler, running the session (errors coded, time
 * counted), and release, stats and close.
 * `OrtStage` (SwarmBee's Llama shards) and `OnnxDecoderStage` (imported decoders)
 * add only how they build feeds and store what the graph returns.
 */
import { asSwarmBeeError, EngineClosedError, EngineFailedError } from '@swarmbee/core';
import type { ShardGraph } from '@swarmbee/model';
import type ort from 'onnxruntime-node';
import type { KvCache, KvElements } from './kv-cache.js';
import {
  kvLimits,
  type StageBatch,
  type StageEngine,
  type StageInfo,
  type StageOutput,
  type StageStats,
  stageInfo,
} from './stage-engine.js';
import { RowSampler } from './stage-session.js';

export abstract class ShardStage<T extends KvElements> implements StageEngine {
  readonly info: StageInfo;
  protected readonly kv: KvCache<T>;
  protected readonly sampler: RowSampler;
  readonly #session: ort.InferenceSession;
  #forwards = 0;
  #forwardMsTotal = 0;
  #closed = false;

  protected constructor(session: ort.InferenceSession, shard: ShardGraph, kv: KvCache<T>) {
    const { config } = shard;
    this.#session = session;
    this.info = stageInfo(shard, config, kvLimits(kv));
    this.kv = kv;
    this.sampler = new RowSampler(config.vocabSize);
  }

  abstract forward(batch: StageBatch): Promise<StageOutput>;

  protected checkOpen(): void {
    if (this.#closed) throw new EngineClosedError('the stage engine is closed');
  }

  /**
   * One forward pass of the graph: errors become EngineFailedError, and the time is counted
   * and returned.
   */
  protected async run(
    feeds: Record<string, ort.Tensor>,
    fetches?: Record<string, ort.Tensor | null>,
  ): Promise<{ results: ort.InferenceSession.OnnxValueMapType; forwardMs: number }> {
    const runStart = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await (fetches ? this.#session.run(feeds, fetches) : this.#session.run(feeds));
    } catch (error) {
      throw new EngineFailedError(
        `forward pass of layers [${this.info.layerStart}, ${this.info.layerEnd}) failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const forwardMs = performance.now() - runStart;
    this.#forwards++;
    this.#forwardMsTotal += forwardMs;
    return { results, forwardMs };
  }

  async release(seqIds: string[]): Promise<void> {
    for (const id of seqIds) {
      this.kv.release(id);
      this.sampler.release(id);
    }
  }

  async stats(): Promise<StageStats> {
    return {
      forwards: this.#forwards,
      forwardMsTotal: this.#forwardMsTotal,
      sequences: this.kv.size,
      kvBytes: this.kv.bytes,
      kvBudgetBytes: this.kv.budgetBytes,
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
