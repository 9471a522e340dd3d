/**
 * One member of a tensor-parallel group: a layer range run over the member's slice of
 * every layer (its KV heads, its feed-forward columns), with its own KV cache for its
 * heads. Each layer is two segment runs, each ending in a partial the group sums
 * (`AllReduce`, the only thing a member needs from its group); the residual adds follow
 * the sums, so every member carries the same hidden state. The leader (rank 0) embeds the
 * tokens on the first stage (the others add zeros to its rows: the sum is the broadcast)
 * and, on the last, runs the final norm and LM head and samples; the others return no
 * tokens (-1). Runs in the calling thread: host it on a stage thread (`ThreadedStage`).
 */
import {
  type AllReduce,
  asSwarmBeeError,
  EngineClosedError,
  EngineFailedError,
  headDim,
  layerWindow,
} from '@swarmbee/core';
import type { TensorSliceShard } from '@swarmbee/model';
import { SHARD_IO, shardBiasInputs } from '@swarmbee/model/graph-io';
import ort from 'onnxruntime-node';
import { attentionBiasTensors, fedPastWidth, logitIndex, positionIds } from './batch-feeds.js';
import { type SegmentPacer, unpaced } from './device-emulation.js';
import { KvCache } from './kv-cache.js';
import { storeLayerRows } from './kv-rows.js';
import {
  DEFAULT_KV_BUDGET_BYTES,
  DEFAULT_MAX_SEQUENCES,
  kvLimits,
  type StageBatch,
  type StageEngine,
  type StageInfo,
  type StageOptions,
  type StageOutput,
  type StageStats,
  type StageTiming,
  stageInfo,
} from './stage-engine.js';
import { checkBatch, RowSampler, stageSessionOptions } from './stage-session.js';

type Feeds = Record<string, ort.Tensor>;

interface LayerSessions {
  attention: ort.InferenceSession;
  feedForward: ort.InferenceSession;
}

interface MemberSessions {
  layers: LayerSessions[];
  embedding?: ort.InferenceSession;
  head?: ort.InferenceSession;
}

/** Per forward: what the segment runs and the sums cost, beside the usual stage timing. */
export interface MemberTiming extends StageTiming {
  /** Wall time awaiting the group's sums (their copies, waits and adds). */
  allReduceMs: number;
  /** Segment runs (two per layer, plus embedding and head on the leader). */
  segmentRuns: number;
}

export class TensorMemberStage implements StageEngine {
  readonly info: StageInfo;
  readonly #shard: TensorSliceShard;
  readonly #group: AllReduce;
  readonly #layers: LayerSessions[];
  readonly #embedding: ort.InferenceSession | undefined;
  readonly #head: ort.InferenceSession | undefined;
  readonly #kv: KvCache<Float32Array>;
  readonly #sampler: RowSampler;
  readonly #pace: SegmentPacer;
  readonly #biases: { full: boolean; window: boolean };
  readonly #window: number | undefined;
  #forwards = 0;
  #forwardMsTotal = 0;
  #closed = false;

  private constructor(
    shard: TensorSliceShard,
    group: AllReduce,
    sessions: MemberSessions,
    options: StageOptions,
    pace: SegmentPacer,
  ) {
    const { config, slice } = shard;
    this.#shard = shard;
    this.#pace = pace;
    this.#group = group;
    this.#layers = sessions.layers;
    this.#embedding = sessions.embedding;
    this.#head = sessions.head;
    const windows = Array.from({ length: shard.layerEnd - shard.layerStart }, (_, l) =>
      layerWindow(config, shard.layerStart + l),
    );
    this.#kv = new KvCache(
      shard.layerEnd - shard.layerStart,
      slice.kvHeads.end - slice.kvHeads.start,
      headDim(config),
      config.maxSeqLen,
      options.kvBudgetBytes ?? DEFAULT_KV_BUDGET_BYTES,
      options.maxSequences ?? DEFAULT_MAX_SEQUENCES,
      { windows },
    );
    this.#biases = shardBiasInputs(config, shard.layerStart, shard.layerEnd);
    this.#window = windows.find((w) => w !== undefined);
    this.#sampler = new RowSampler(config.vocabSize);
    this.info = stageInfo(shard, config, kvLimits(this.#kv));
  }

  /**
   * Loads the member's segment graphs; `group` is its all-reduce (rank = the slice's rank).
   * `pace` runs each segment (benchmarks' device emulation: `paceSegments`); default as is.
   */
  static async create(
    shard: TensorSliceShard,
    group: AllReduce,
    options: StageOptions = {},
    pace: SegmentPacer = unpaced,
  ): Promise<TensorMemberStage> {
    if (group.rank !== shard.slice.rank || group.size !== shard.slice.degree)
      throw new EngineFailedError(
        `member ${shard.slice.rank} of ${shard.slice.degree} was given the all-reduce of rank ${group.rank} of ${group.size}`,
      );
    const sessionOptions = stageSessionOptions(shard.externalDataDir, {
      ...options,
      allowSpinning: options.allowSpinning ?? true,
    });
    const load = async (graph: Uint8Array, what: string) => {
      try {
        return await ort.InferenceSession.create(graph, sessionOptions);
      } catch (error) {
        throw new EngineFailedError(
          `onnxruntime cannot load the ${what} segment of member ${shard.slice.rank}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    };
    const layers: LayerSessions[] = [];
    for (const [l, segments] of shard.layers.entries()) {
      const layer = shard.layerStart + l;
      layers.push({
        attention: await load(segments.attention, `attention ${layer}`),
        feedForward: await load(segments.feedForward, `feed-forward ${layer}`),
      });
    }
    const sessions: MemberSessions = { layers };
    if (shard.embedding) sessions.embedding = await load(shard.embedding, 'embedding');
    if (shard.head) sessions.head = await load(shard.head, 'head');
    return new TensorMemberStage(shard, group, sessions, options, pace);
  }

  get rank(): number {
    return this.#group.rank;
  }

  async forward(batch: StageBatch): Promise<StageOutput> {
    if (this.#closed) throw new EngineClosedError('the stage engine is closed');
    const stageStart = performance.now();
    const { rows } = batch;
    const width = checkBatch(batch, this.info);
    this.#forwards++;
    const { dim } = this.info;
    const timing: MemberTiming = { forwardMs: 0, kvMs: 0, allReduceMs: 0, segmentRuns: 0 };
    const kvStart = performance.now();
    const { arena } = this.#kv.prepare(rows);
    timing.kvMs += performance.now() - kvStart;
    const shape3 = [rows.length, width, dim];
    const common: Feeds = {
      [SHARD_IO.positionIds]: new ort.Tensor('int64', positionIds(rows, width), [
        rows.length,
        width,
      ]),
    };
    // Each attention segment takes the bias of its own layer's kind only; full-context
    // layers are fed `pastWidth` positions (see fedPastWidth).
    const pastWidth = fedPastWidth(rows, width, arena.capacity);
    const bias = attentionBiasTensors(rows, width, pastWidth, {
      full: this.#biases.full,
      window: this.#window,
    });

    let x: Float32Array;
    if (this.info.isFirst) {
      // The leader embeds; the sum of its rows and everyone else's zeros hands them out.
      x = this.#embedding
        ? await this.#output(
            this.#embedding,
            {
              ...common,
              [SHARD_IO.inputIds]: new ort.Tensor('int64', batch.tokens!, [rows.length, width]),
            },
            SHARD_IO.hiddenOut,
            timing,
          )
        : new Float32Array(rows.length * width * dim);
      x = await this.#sum(x, timing);
    } else {
      x = batch.hidden!;
    }
    const hidden = new ort.Tensor('float32', x, shape3);

    for (const [l, sessions] of this.#layers.entries()) {
      const layer = this.info.layerStart + l;
      const past = this.#kv.fedPast(arena, l, pastWidth);
      const dims = [rows.length, this.#kv.kvHeads, past.positions, this.#kv.headDim];
      const feeds: Feeds = {
        ...common,
        ...(this.#kv.window(l) === undefined
          ? { [SHARD_IO.attentionBias]: bias.full! }
          : { [SHARD_IO.attentionBiasWindow]: bias.window! }),
        [SHARD_IO.hiddenIn]: hidden,
        [SHARD_IO.pastKey(layer)]: new ort.Tensor('float32', past.keys, dims),
        [SHARD_IO.pastValue(layer)]: new ort.Tensor('float32', past.values, dims),
      };
      const results = await this.#run(sessions.attention, feeds, timing);
      const storeStart = performance.now();
      storeLayerRows(
        this.#kv,
        arena,
        l,
        rows,
        width,
        results[SHARD_IO.newKey(layer)]!.data as Float32Array,
        results[SHARD_IO.newValue(layer)]!.data as Float32Array,
      );
      timing.kvMs += performance.now() - storeStart;
      addInto(x, await this.#sum(results[SHARD_IO.partial]!.data as Float32Array, timing));
      const fed = await this.#output(
        sessions.feedForward,
        { ...common, [SHARD_IO.hiddenIn]: hidden },
        SHARD_IO.partial,
        timing,
      );
      addInto(x, await this.#sum(fed, timing));
    }
    this.#kv.commit(rows);

    if (!this.info.isLast) {
      timing.stageMs = performance.now() - stageStart;
      return { kind: 'hidden', hidden: x, width, timing };
    }
    const logitsWhich = batch.logits ?? 'last';
    if (!this.#head) {
      timing.stageMs = performance.now() - stageStart;
      return { kind: 'tokens', tokens: new Int32Array(rows.length).fill(-1), timing };
    }
    const perRow = logitsWhich === 'all' ? width : 1;
    let logits = await this.#output(
      this.#head,
      {
        ...common,
        [SHARD_IO.hiddenIn]: hidden,
        [SHARD_IO.logitIndex]: new ort.Tensor('int64', logitIndex(rows, width, logitsWhich), [
          rows.length,
          perRow,
          1,
        ]),
      },
      SHARD_IO.logits,
      timing,
    );
    const { vocab } = this.#shard.slice;
    if (vocab) {
      // Each member's rows of the vocabulary, in place in a zero vector: their sum (exact,
      // every other term a zero) is the whole logits, which the leader samples from.
      logits = await this.#sum(spread(logits, vocab, this.info.vocabSize), timing);
      if (this.rank !== 0) {
        timing.stageMs = performance.now() - stageStart;
        return { kind: 'tokens', tokens: new Int32Array(rows.length).fill(-1), timing };
      }
    }
    const sampleStart = performance.now();
    const output = this.#sampler.sample(batch, logits, perRow, timing);
    const end = performance.now();
    timing.sampleMs = end - sampleStart;
    timing.stageMs = end - stageStart;
    return output;
  }

  async release(seqIds: string[]): Promise<void> {
    for (const id of seqIds) {
      this.#kv.release(id);
      this.#sampler.release(id);
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
    await this.#group.close();
    const sessions = [
      ...this.#layers.flatMap((s) => [s.attention, s.feedForward]),
      ...(this.#embedding ? [this.#embedding] : []),
      ...(this.#head ? [this.#head] : []),
    ];
    try {
      await Promise.all(sessions.map((s) => s.release()));
    } catch (error) {
      throw asSwarmBeeError(error);
    }
  }

  async #sum(partial: Float32Array, timing: MemberTiming): Promise<Float32Array> {
    const start = performance.now();
    const sum = await this.#group.sum(partial);
    timing.allReduceMs += performance.now() - start;
    return sum;
  }

  async #output(
    session: ort.InferenceSession,
    feeds: Feeds,
    name: string,
    timing: MemberTiming,
  ): Promise<Float32Array> {
    return (await this.#run(session, feeds, timing))[name]!.data as Float32Array;
  }

  async #run(
    session: ort.InferenceSession,
    feeds: Feeds,
    timing: MemberTiming,
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const start = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.#pace(() => session.run(feeds));
    } catch (error) {
      throw new EngineFailedError(
        `member ${this.#shard.slice.rank}: a segment of layers [${this.info.layerStart}, ${this.info.layerEnd}) failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const ms = performance.now() - start;
    timing.forwardMs += ms;
    timing.segmentRuns++;
    this.#forwardMsTotal += ms;
    return results;
  }
}

/** Logit rows over `vocab` (of a vocabulary of `size`) spread into zeroed full-vocabulary rows. */
function spread(
  logits: Float32Array,
  vocab: { start: number; end: number },
  size: number,
): Float32Array {
  const width = vocab.end - vocab.start;
  const rows = logits.length / width;
  const full = new Float32Array(rows * size);
  for (let r = 0; r < rows; r++)
    full.set(logits.subarray(r * width, (r + 1) * width), r * size + vocab.start);
  return full;
}

/** `x += partial`, element-wise. */
function addInto(x: Float32Array, partial: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (partial[i] as number);
}
