/**
 * The hidden state leaving every layer of a model, for analyses that compare layers
 * (calibration for pruning): one-layer shards built `headless` (so the last one too ends
 * in `hidden_out`), chained in this thread, each window run whole from an empty past.
 * Nothing is cached between windows, so no KV cache and no sampler are involved.
 */
import { headDim, InvalidArgumentError } from '@swarmbee/core';
import { type LlamaShardGraph, SHARD_IO } from '@swarmbee/model';
import ort from 'onnxruntime-node';
import { attentionBias, positionIds } from './batch-feeds.js';
import type { StageOptions } from './stage-engine.js';
import { createShardSession } from './stage-session.js';

export class LayerStateChain {
  readonly #sessions: ort.InferenceSession[];
  readonly #dim: number;
  readonly #emptyPast: ort.Tensor;

  private constructor(sessions: ort.InferenceSession[], shard: LlamaShardGraph) {
    this.#sessions = sessions;
    this.#dim = shard.config.dim;
    this.#emptyPast = new ort.Tensor('float32', new Float32Array(0), [
      1,
      shard.config.nKvHeads,
      0,
      headDim(shard.config),
    ]);
  }

  /**
   * Loads `shards`, one per layer in order from layer 0, each built headless. Throws
   * InvalidArgumentError when they are not consecutive one-layer shards from 0.
   */
  static async open(
    shards: readonly LlamaShardGraph[],
    stage: StageOptions = {},
  ): Promise<LayerStateChain> {
    shards.forEach((shard, l) => {
      if (shard.layerStart !== l || shard.layerEnd !== l + 1)
        throw new InvalidArgumentError(
          `layer states need one-layer shards from layer 0 in order; shard ${l} holds layers [${shard.layerStart}, ${shard.layerEnd})`,
        );
    });
    if (shards.length === 0) throw new InvalidArgumentError('layer states need at least one layer');
    const sessions: ort.InferenceSession[] = [];
    try {
      for (const shard of shards) sessions.push(await createShardSession(shard, stage));
    } catch (error) {
      await Promise.allSettled(sessions.map((s) => s.release()));
      throw error;
    }
    return new LayerStateChain(sessions, shards[0]!);
  }

  /**
   * Runs one window of token ids (positions 0..T-1, causal) through every layer and
   * returns the hidden state leaving each, `[T, dim]` fp32 row-major, layer 0 first.
   */
  async run(window: readonly number[]): Promise<Float32Array[]> {
    const T = window.length;
    const rows = [{ seqId: 'layer-states', start: 0, count: T }];
    const common = {
      [SHARD_IO.positionIds]: new ort.Tensor('int64', positionIds(rows, T), [1, T]),
      [SHARD_IO.attentionBias]: new ort.Tensor('float32', attentionBias(rows, T, 0), [1, 1, T, T]),
    };
    const out: Float32Array[] = [];
    for (const [l, session] of this.#sessions.entries()) {
      const feeds: Record<string, ort.Tensor> = {
        ...common,
        [SHARD_IO.pastKey(l)]: this.#emptyPast,
        [SHARD_IO.pastValue(l)]: this.#emptyPast,
      };
      if (l === 0)
        feeds[SHARD_IO.inputIds] = new ort.Tensor('int64', BigInt64Array.from(window, BigInt), [
          1,
          T,
        ]);
      else feeds[SHARD_IO.hiddenIn] = new ort.Tensor('float32', out[l - 1]!, [1, T, this.#dim]);
      const result = await session.run(feeds, [SHARD_IO.hiddenOut]);
      out.push(result[SHARD_IO.hiddenOut]!.data as Float32Array);
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#sessions.map((s) => s.release()));
  }
}
