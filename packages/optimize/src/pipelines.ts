/** Pipelines to measure: model dirs as they would serve, and in-memory variants of one. */
import {
  createStageEngine,
  LocalPipeline,
  type Pipeline,
  type StageOptions,
} from '@swarmbee/engine';
import type { ModelDir, ModelVariant, VariantBuilder } from '@swarmbee/model';

/** One stage over the whole model, in this thread: measuring never needs an event loop free. */
export function modelPipeline(dir: ModelDir, stage: StageOptions = {}): Promise<LocalPipeline> {
  return LocalPipeline.create(dir, { stages: 1, threaded: false, stage });
}

/** A variant (layers dropped, layers quantized) as one in-process stage. */
export async function variantPipeline(
  builder: VariantBuilder,
  variant: ModelVariant,
  stage: StageOptions = {},
): Promise<Pipeline> {
  const shard = await builder.shard(variant);
  const engine = await createStageEngine(shard, stage);
  const { config } = shard;
  return {
    info: {
      vocabSize: config.vocabSize,
      maxSeqLen: config.maxSeqLen,
      stages: [{ layerStart: 0, layerEnd: config.nLayers }],
    },
    step: async (step) => {
      const out = await engine.forward({
        rows: step.rows,
        tokens: step.tokens,
        logits: step.logits,
      });
      if (out.kind !== 'tokens')
        throw new Error('internal: a whole-model stage returned hidden states');
      const result: Awaited<ReturnType<Pipeline['step']>> = { tokens: out.tokens };
      if (out.logits) result.logits = out.logits;
      return result;
    },
    release: (ids) => engine.release(ids),
    close: () => engine.close(),
  };
}

/** Runs `task` with a pipeline and closes it whatever happens. */
export async function withPipeline<T>(
  open: Promise<Pipeline>,
  task: (pipeline: Pipeline) => Promise<T>,
): Promise<T> {
  const pipeline = await open;
  try {
    return await task(pipeline);
  } finally {
    await pipeline.close();
  }
}
