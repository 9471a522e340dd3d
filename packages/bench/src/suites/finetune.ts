/**
 * `npm run bench -- finetune`: LoRA fine-tuning in one process. stories260K on the
 * lighthouse stories over 1, 2 and 3 stages (tokens/s, loss against one stage, perplexity
 * of held-out target-style and original-style text before and after), and on synthetic
 * shapes the cost of keeping activations and of a quantized frozen base; and the same run
 * over local clusters of 1-3 worker processes (`finetune --url`, cluster-part.ts).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, ModelDirInvalidError } from '@swarmbee/core';
import {
  cachedSynthModel,
  importLlama2c,
  type LlamaModelDir,
  requireLlamaDir,
} from '@swarmbee/model';
import { clusterPart } from '../finetune/cluster-part.js';
import { federatedPart } from '../finetune/federated-part.js';
import { pipelinePart } from '../finetune/pipeline-part.js';
import { resourcesPart } from '../finetune/resources-part.js';
import { servingPart } from '../finetune/serving-part.js';
import { SHARED_MODELS } from '../shared-models.js';
import { resultHeader, type Suite } from '../suite.js';
import type { SuitePart } from './optimize-speed.js';

/** The suite's parts (`--parts`): in-process stages, worker processes, memory and quantized bases, serving adapters. */
export const FINETUNE_SUITE_PARTS = [
  'pipeline',
  'cluster',
  'federated',
  'resources',
  'serving',
] as const;

export const finetuneSuite: Suite = {
  name: 'finetune',
  describe:
    'parts (--parts, default all): pipeline — LoRA training of stories260K over 1-3 in-process stages (tokens/s, loss vs 1 stage, perplexity before/after); cluster — the same over 1-3 worker processes, then the 15M shape likewise (finetune --url: tokens/s vs in process, loss, idle fraction vs 1F1B bubble); federated — 4 data owners with different data in rounds (FedAvg, FedProx, the UCB bandit): owners’ loss by round against one site with all records, bytes per round, arms played; resources — activation memory, quantized bases; serving — decode tokens/s of 8 streams with adapters merged or served unmerged (base and mixed rows), fp32 and int8',
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
    const parts = context.parts ?? [...FINETUNE_SUITE_PARTS];
    for (const part of parts)
      if (!(FINETUNE_SUITE_PARTS as readonly string[]).includes(part))
        throw new InvalidArgumentError(
          `--parts names ${JSON.stringify(part)}; the finetune suite's parts are ${FINETUNE_SUITE_PARTS.join(', ')}`,
        );
    if (parts.length === 0)
      throw new InvalidArgumentError('--parts names no part of the finetune suite');
    const root = await mkdtemp(join(tmpdir(), 'swarmbee-bench-finetune-'));
    try {
      const done: SuitePart[] = [];
      let model: LlamaModelDir | undefined;
      let steps: number | undefined;
      if (parts.includes('pipeline')) {
        const pipeline = await pipelinePart(context, root, stories);
        ({ model, steps } = pipeline);
        done.push(pipeline);
      }
      if (parts.includes('cluster')) {
        model ??= await importLlama2c({ ...stories, out: join(root, 's260k') });
        done.push(
          await clusterPart(context, root, {
            name: 'stories260K',
            model,
            steps: { full: 16, quick: 6 },
            key: '',
            chartFile: 'finetune-cluster.svg',
          }),
        );
        const small = requireLlamaDir(await cachedSynthModel('small'), 'finetune bench');
        done.push(
          await clusterPart(context, root, {
            name: '15M shape (dim 288, 6 layers, random weights)',
            model: small,
            steps: { full: 4, quick: 2 },
            key: '15M shape: ',
            chartFile: 'finetune-cluster-15m.svg',
          }),
        );
      }
      if (parts.includes('federated')) {
        model ??= await importLlama2c({ ...stories, out: join(root, 's260k') });
        done.push(await federatedPart(context, root, model));
      }
      if (parts.includes('resources')) done.push(await resourcesPart(context, root));
      if (parts.includes('serving')) done.push(await servingPart(context, root));
      model ??= await importLlama2c({ ...stories, out: join(root, 's260k') });
      return {
        suite: 'finetune',
        title: 'Fine-tuning: LoRA training in one process and on a local cluster',
        ...resultHeader(
          context,
          started,
          model,
          'stories260K from ../shared/models (llama2.c import); synthetic small and stories110m presets',
        ),
        options: { quick: context.quick, parts, ...(steps === undefined ? {} : { steps }) },
        notes: done.flatMap((p) => p.notes),
        metrics: Object.assign({}, ...done.map((p) => p.metrics)),
        tables: done.flatMap((p) => p.tables),
        checks: done.flatMap((p) => p.checks),
        charts: done.flatMap((p) => p.charts),
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
};
