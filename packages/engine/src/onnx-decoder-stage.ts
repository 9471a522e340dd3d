/**
 * The StageEngine for stages cut out of an imported ONNX decoder. Their IO is
 * the export's own (GPT-2 style: token ids or the hidden state, position ids, a
 * 0/1 attention mask over past and new tokens, one past input and one present
 * output per layer), so they get their own engine beside `OrtStage`.
 *
 * The KV cache keeps batch arenas as `OrtStage` does, in the export's layout
 * (K and V stacked per layer when the graph takes them so) and element type, and
 * feeds an arena as it lies: its spare capacity and other rows' longer pasts are
 * masked out. A present output is the past with the new tokens appended, so after
 * each run only the new tokens' slots are copied into the cache.
 */

import type { DecoderFloatDtype, OnnxDecoderStageIo } from '@swarmbee/core';
import type { OnnxDecoderShardGraph } from '@swarmbee/model';
import ort from 'onnxruntime-node';
import {
  decoderAttentionMask,
  decoderPositions,
  indexTensor,
  pickLogits,
} from './decoder-feeds.js';
import { type KvArena, KvCache, type KvElements } from './kv-cache.js';
import { ShardStage } from './shard-stage.js';
import {
  DEFAULT_KV_BUDGET_BYTES,
  DEFAULT_MAX_SEQUENCES,
  type StageBatch,
  type StageOptions,
  type StageOutput,
} from './stage-engine.js';
import { checkBatch, createShardSession } from './stage-session.js';

type Feeds = Record<string, ort.Tensor>;
type Results = ort.InferenceSession.OnnxValueMapType;

export class OnnxDecoderStage extends ShardStage<KvElements> {
  readonly #io: OnnxDecoderStageIo;

  private constructor(
    session: ort.InferenceSession,
    shard: OnnxDecoderShardGraph,
    options: StageOptions,
  ) {
    const { config, io } = shard;
    super(
      session,
      shard,
      new KvCache<KvElements>(
        shard.layerEnd - shard.layerStart,
        io.kv.kvHeads,
        io.kv.headDim,
        config.maxSeqLen,
        options.kvBudgetBytes ?? DEFAULT_KV_BUDGET_BYTES,
        options.maxSequences ?? DEFAULT_MAX_SEQUENCES,
        { dtype: io.kv.dtype, stacked: io.kv.kind === 'stacked' },
      ),
    );
    this.#io = io;
  }

  static async create(
    shard: OnnxDecoderShardGraph,
    options: StageOptions = {},
  ): Promise<OnnxDecoderStage> {
    return new OnnxDecoderStage(await createShardSession(shard, options), shard, options);
  }

  async forward(batch: StageBatch): Promise<StageOutput> {
    this.checkOpen();
    const { rows } = batch;
    const width = checkBatch(batch, this.info);
    const io = this.#io;
    const kvStart = performance.now();
    const { arena } = this.kv.prepare(rows);
    const dims = [rows.length, width];
    const feeds: Feeds = {};
    if (io.inputIds) feeds[io.inputIds.name] = indexTensor(io.inputIds.dtype, batch.tokens!, dims);
    if (io.hiddenIn)
      feeds[io.hiddenIn] = new ort.Tensor('float32', batch.hidden!, [...dims, this.info.dim]);
    if (io.positionIds) {
      const positions = decoderPositions(rows, width);
      feeds[io.positionIds.name] = indexTensor(io.positionIds.dtype, positions, dims);
    }
    if (io.attentionMask) {
      const mask = decoderAttentionMask(rows, width, arena.capacity);
      feeds[io.attentionMask.name] = indexTensor(io.attentionMask.dtype, mask, [
        rows.length,
        arena.capacity + width,
      ]);
    }
    this.#feedPast(arena, feeds);
    let kvMs = performance.now() - kvStart;

    const { results, forwardMs } = await this.run(feeds);
    const storeStart = performance.now();
    this.#storeNewTokens(arena, batch, width, results);
    this.kv.commit(rows);
    kvMs += performance.now() - storeStart;
    const timing = { forwardMs, kvMs };
    if (io.hiddenOut)
      return { kind: 'hidden', hidden: results[io.hiddenOut]!.data as Float32Array, width, timing };
    const which = batch.logits ?? 'last';
    const logits = pickLogits(
      results[io.logits!]!.data as Float32Array | Uint16Array,
      rows,
      width,
      this.info.vocabSize,
      which,
    );
    return this.sampler.sample(batch, logits, which === 'all' ? width : 1, timing);
  }

  /** The arena's buffers are the past inputs as they lie: stacked [2, B, H, cap, D] or K and V apart. */
  #feedPast(arena: KvArena<KvElements>, feeds: Feeds): void {
    const { kv } = this.#io;
    const dtype: DecoderFloatDtype = kv.dtype;
    const dims = [arena.rows.length, kv.kvHeads, arena.capacity, kv.headDim];
    kv.past.forEach((names, l) => {
      if (kv.kind === 'stacked') feeds[names[0]!] = tensor(dtype, arena.stacked![l]!, [2, ...dims]);
      else {
        feeds[names[0]!] = tensor(dtype, arena.keys[l]!, dims);
        feeds[names[1]!] = tensor(dtype, arena.values[l]!, dims);
      }
    });
  }

  /** Copies each row's new keys and values (present slots from the past width on) after its own past. */
  #storeNewTokens(
    arena: KvArena<KvElements>,
    batch: StageBatch,
    width: number,
    results: Results,
  ): void {
    const { kv } = this.#io;
    const { kvHeads, headDim: hd } = kv;
    const past = arena.capacity;
    const B = batch.rows.length;
    kv.present.forEach((names, l) => {
      const targets = [arena.keys[l]!, arena.values[l]!];
      targets.forEach((target, part) => {
        const stacked = kv.kind === 'stacked';
        const present = results[stacked ? names[0]! : names[part]!]!.data as KvElements;
        const block = stacked ? part * B : 0;
        batch.rows.forEach((row, r) => {
          for (let h = 0; h < kvHeads; h++) {
            const from = (((block + r) * kvHeads + h) * (past + width) + past) * hd;
            const to = ((r * kvHeads + h) * past + row.start) * hd;
            target.set(present.subarray(from, from + row.count * hd), to);
          }
        });
      });
    });
  }
}

function tensor(dtype: DecoderFloatDtype, data: KvElements, dims: number[]): ort.Tensor {
  return dtype === 'float16'
    ? new ort.Tensor('float16', data as Uint16Array, dims)
    : new ort.Tensor('float32', data as Float32Array, dims);
}
