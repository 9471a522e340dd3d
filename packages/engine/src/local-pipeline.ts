/** K stages of one model chained in this process, each in its own thread. */
import { InvalidArgumentError } from '@swarmbee/core';
import {
  buildGroupShards,
  buildShard,
  evenRanges,
  type LayerRange,
  type ModelDir,
  type ShardGraph,
} from '@swarmbee/model';
import type { Pipeline, PipelineInfo, PipelineResult, PipelineStep } from './pipeline.js';
import type { StageEngine, StageOptions } from './stage-engine.js';
import { createStageEngine } from './stage-factory.js';
import { TensorGroupStage } from './tensor-group-stage.js';
import { ThreadedStage } from './threaded-stage.js';

export interface LocalPipelineOptions {
  /** Layer ranges, one per stage; default: `stages` even ranges. */
  ranges?: LayerRange[];
  /** Number of even stages when `ranges` is absent. Default 1. */
  stages?: number;
  /** Run each stage in a worker thread (default true); false runs them on the calling thread. */
  threaded?: boolean;
  stage?: StageOptions;
  /** Builds each stage's shard; default `buildShard(dir, range)` (an adapted model passes its own). */
  shard?: (range: LayerRange) => ShardGraph;
  /**
   * Per stage, the relative speeds of the members of a tensor-parallel group that runs it
   * (one thread each; heads and columns split in proportion, see `splitTensors`). Absent,
   * or one speed: the stage is one engine. Default: no groups.
   */
  groups?: (readonly number[] | undefined)[];
  /**
   * A group that runs the last stage splits its LM head by vocabulary (every member computes
   * its rows' logits, summed into the leader's) instead of the leader computing it alone.
   * Default false.
   */
  splitVocab?: boolean;
}

/**
 * Several micro-batches may be in the pipeline at once (the scheduler keeps one per stage
 * in flight): each stage runs its batches one after another in the order they came, as a
 * worker's stage runner does, so a prompt's next chunk always finds the one before in the
 * cache, while different stages work on different batches at the same time.
 */
export class LocalPipeline implements Pipeline {
  readonly info: PipelineInfo;
  /** Per stage: the end of its queue of work. Never rejects. */
  readonly #tails: Promise<unknown>[];

  private constructor(
    readonly stages: StageEngine[],
    info: PipelineInfo,
  ) {
    this.info = info;
    this.#tails = stages.map(() => Promise.resolve());
  }

  static async create(dir: ModelDir, options: LocalPipelineOptions = {}): Promise<LocalPipeline> {
    const { config } = dir.manifest;
    const ranges = options.ranges ?? evenRanges(config.nLayers, options.stages ?? 1);
    for (let i = 0; i < ranges.length; i++) {
      const expectedStart = i === 0 ? 0 : ranges[i - 1]!.end;
      if (ranges[i]!.start !== expectedStart) {
        throw new InvalidArgumentError(
          `stage ${i} starts at layer ${ranges[i]!.start}; the pipeline needs ${expectedStart}`,
        );
      }
    }
    if (ranges.at(-1)?.end !== config.nLayers) {
      throw new InvalidArgumentError(`the last stage must end at layer ${config.nLayers}`);
    }
    const stageOptions: StageOptions = { ...options.stage };
    const create = options.threaded === false ? createStageEngine : ThreadedStage.create;
    const stages: StageEngine[] = [];
    try {
      const shard = options.shard ?? ((range: LayerRange) => buildShard(dir, range));
      for (const [i, range] of ranges.entries()) {
        const speeds = options.groups?.[i];
        if (speeds === undefined || speeds.length <= 1) {
          stages.push(await create(shard(range), stageOptions));
          continue;
        }
        if (options.threaded === false || options.shard)
          throw new InvalidArgumentError(
            `stage ${i} is a tensor-parallel group: its members run on their own threads from the model's weights (threaded, no custom shard)`,
          );
        const shards = await buildGroupShards(dir, range, speeds, {
          ...(options.splitVocab ? { splitVocab: true } : {}),
        });
        stages.push(await TensorGroupStage.create(shards, { stage: stageOptions }));
      }
    } catch (error) {
      await Promise.allSettled(stages.map((s) => s.close()));
      throw error;
    }
    return new LocalPipeline(stages, {
      vocabSize: config.vocabSize,
      maxSeqLen: config.maxSeqLen,
      stages: stages.map((s) => ({
        layerStart: s.info.layerStart,
        layerEnd: s.info.layerEnd,
        limits: s.info.limits,
      })),
    });
  }

  async step(step: PipelineStep): Promise<PipelineResult> {
    const { rows } = step;
    let output = await this.#inOrder(0, (stage) =>
      stage.forward({ rows, tokens: step.tokens, logits: step.logits }),
    );
    for (let i = 1; i < this.stages.length; i++) {
      if (output.kind !== 'hidden') break;
      const { hidden } = output;
      output = await this.#inOrder(i, (stage) =>
        stage.forward({ rows, hidden, logits: step.logits }),
      );
    }
    if (output.kind !== 'tokens')
      throw new InvalidArgumentError('the pipeline ended on a stage without the LM head');
    const result: PipelineResult = { tokens: output.tokens };
    if (output.logprobs) result.logprobs = output.logprobs;
    if (output.logits) result.logits = output.logits;
    return result;
  }

  async release(seqIds: string[]): Promise<void> {
    await Promise.all(
      this.stages.map((_, i) => this.#inOrder(i, (stage) => stage.release(seqIds))),
    );
  }

  /** Runs `work` on stage `index` once the work queued there before it has finished. */
  #inOrder<T>(index: number, work: (stage: StageEngine) => Promise<T>): Promise<T> {
    const run = this.#tails[index]!.then(() => work(this.stages[index]!));
    this.#tails[index] = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.stages.map((s) => s.close()));
  }
}
