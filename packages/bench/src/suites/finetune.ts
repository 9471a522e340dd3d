/**
 * `npm run bench -- finetune`: LoRA fine-tuning in one process. stories260K on the
 * lighthouse stories over 1, 2 and 3 stages (tokens/s, loss against one stage, perplexity
 * of held-out target-style and original-style text before and after), and on synthetic
 * shapes the cost of keeping activations and of a quantized frozen base. Distributed
 * runs (workers, federated rounds) extend it in phase 2.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelDirInvalidError } from '@swarmbee/core';
import { pipelinePart } from '../finetune/pipeline-part.js';
import { resourcesPart } from '../finetune/resources-part.js';
import { SHARED_MODELS } from '../shared-models.js';
import { resultHeader, type Suite } from '../suite.js';

export const finetuneSuite: Suite = {
  name: 'finetune',
  describe:
    'LoRA training in process: stories260K over 1-3 stages (tokens/s, loss vs 1 stage, perplexity before/after); activation memory; quantized bases',
  async run(context) {
    const started = Date.now();
    const stories = {
      checkpoint: join(SHARED_MODELS, 'stories260K', 'stories260K.bin'),
      tokenizer: join(SHARED_MODELS, 'stories260K', 'tok512.bin'),
    };
    if (!existsSync(stories.checkpoint))
      throw new ModelDirInvalidError(
        `the finetune suite trains stories260K; ${stories.checkpoint} is missing`,
      );
    const root = await mkdtemp(join(tmpdir(), 'swarmbee-bench-finetune-'));
    try {
      const pipeline = await pipelinePart(context, root, stories);
      const resources = await resourcesPart(context, root);
      return {
        suite: 'finetune',
        title: 'Fine-tuning: LoRA training in one process',
        ...resultHeader(
          context,
          started,
          pipeline.model,
          'stories260K from ../shared/models (llama2.c import); synthetic small and stories110m presets',
        ),
        options: { quick: context.quick, steps: pipeline.steps },
        notes: [...pipeline.notes, ...resources.notes],
        metrics: { ...pipeline.metrics, ...resources.metrics },
        tables: [...pipeline.tables, ...resources.tables],
        checks: [...pipeline.checks, ...resources.checks],
        charts: [...pipeline.charts, ...resources.charts],
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
};
