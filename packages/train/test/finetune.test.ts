import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ContextOverflowError,
  OutputExistsError,
  TrainingCheckpointInvalidError,
  TrainingDivergedError,
} from '@swarmbee/core';
import { type LlamaModelDir, readPeftAdapter } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { checkpointSteps, readCheckpoint } from '../src/checkpoint.js';
import {
  FINETUNE_CHANNEL,
  FINETUNE_DEFAULTS,
  type FinetuneEvent,
  type FinetuneRun,
  type FinetuneSettings,
  finetune,
} from '../src/index.js';
import { STORIES } from './helpers/stories.js';

const SETTINGS: FinetuneSettings = {
  ...FINETUNE_DEFAULTS,
  rank: 2,
  alpha: 4,
  targets: ['q_proj', 'v_proj', 'down_proj'],
  learningRate: 3e-3,
  warmupSteps: 1,
  steps: 6,
  microBatchSize: 2,
  accumulation: 2,
  seqLen: 64,
  threads: 1,
};

/** stories260K and a data file in a fresh test dir; undefined when the model is missing. */
async function setup(
  t: Test,
): Promise<{ root: string; model: LlamaModelDir; data: string } | undefined> {
  const root = t.testdir();
  const model = await stories260kDir(t, root);
  if (!model) return undefined;
  const data = join(root, 'data.jsonl');
  await writeFile(data, `${STORIES.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  return { root, model, data };
}

function run(
  model: LlamaModelDir,
  data: string,
  dir: string,
  settings: Partial<FinetuneSettings> = {},
): FinetuneRun {
  return {
    model,
    data,
    out: join(dir, 'adapter'),
    checkpointDir: join(dir, 'ckpt'),
    settings: { ...SETTINGS, ...settings },
  };
}

t.test(
  'a run stopped and resumed from its checkpoint ends exactly where an uninterrupted run ends',
  async (t) => {
    const setUp = await setup(t);
    if (!setUp) return;
    const { root, model, data } = setUp;
    const straight = await finetune(run(model, data, join(root, 'a'), { checkpointInterval: 0 }));
    t.equal(straight.steps, 6);
    t.ok(straight.history.at(-1)!.loss < straight.history[0]!.loss, 'the loss falls');

    const controller = new AbortController();
    const first = await finetune({
      ...run(model, data, join(root, 'b'), { checkpointInterval: 2 }),
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'step' && event.step === 3) controller.abort();
      },
    });
    t.equal(first.stopped, true);
    t.equal(first.steps, 3);
    t.equal(first.adapterDir, undefined, 'a stopped run writes no adapter, only its checkpoint');
    t.same(await checkpointSteps(join(root, 'b', 'ckpt')), [2, 3]);
    const resumed = await finetune({
      ...run(model, data, join(root, 'b'), { checkpointInterval: 2 }),
      resume: true,
    });
    t.equal(resumed.steps, 6);
    t.same(
      resumed.history,
      straight.history,
      'the same loss, gradient norm and learning rate at every step',
    );
    const a = await readPeftAdapter(straight.adapterDir!);
    const b = await readPeftAdapter(resumed.adapterDir!);
    for (const [name, values] of a.tensors)
      t.same(b.tensors.get(name), values, `${name} bit for bit`);
    t.equal(a.baseModelHash, model.manifest.modelHash, 'the adapter records its base model');
    t.same(
      await checkpointSteps(join(root, 'b', 'ckpt')),
      [4, 6],
      'the newest two checkpoints are kept',
    );
  },
);

t.test(
  '1, 2 and 3 stages, 1F1B or GPipe, stashed or recomputed: the same losses as one stage',
  async (t) => {
    const setUp = await setup(t);
    if (!setUp) return;
    const { root, model, data } = setUp;
    const one = await finetune(
      run(model, data, join(root, 'one'), { targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj'] }),
    );
    for (const variant of [
      { stages: 2, pipelineSchedule: 'gpipe' as const },
      { stages: 3, pipelineSchedule: '1f1b' as const },
      { stages: 3, pipelineSchedule: '1f1b' as const, activations: 'stash' as const },
    ]) {
      const label = `${variant.stages} stages ${variant.pipelineSchedule} ${variant.activations ?? 'recompute'}`;
      const other = await finetune(
        run(model, data, join(root, label.replaceAll(' ', '-')), {
          targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj'],
          ...variant,
        }),
      );
      const worst = Math.max(
        ...other.history.map(
          (h, i) => Math.abs(h.loss - one.history[i]!.loss) / one.history[i]!.loss,
        ),
      );
      t.ok(
        worst < 1e-6,
        `${label}: largest relative loss difference ${worst.toExponential(2)} over ${other.history.length} steps`,
      );
    }
  },
);

t.test(
  'BAD INPUT - a loss that is not finite stops the run and keeps the last good state',
  async (t) => {
    const setUp = await setup(t);
    if (!setUp) return;
    const { root, model, data } = setUp;
    const settings = {
      // Decoupled weight decay of lr × 1 per step multiplies every value by -1e9: an overflow.
      learningRate: 1e9,
      weightDecay: 1,
      warmupSteps: 0,
      schedule: 'constant' as const,
      maxGradNorm: 0,
      steps: 40,
      checkpointInterval: 0,
    };
    const steps: number[] = [];
    const error = await finetune({
      ...run(model, data, root, settings),
      onEvent: (event) => {
        if (event.type === 'step') steps.push(event.step);
      },
    }).catch((e: Error) => e);
    t.match(error, {
      code: TrainingDivergedError.code,
      message: /step \d+: .*checkpointed in .*ckpt\/step-\d{6}/,
    });
    const good = steps.at(-1) ?? 0;
    const { snapshot } = await readCheckpoint(join(root, 'ckpt'));
    t.equal(
      snapshot.state.step,
      good,
      `the checkpoint holds the state after step ${good}, the last applied`,
    );
    for (const values of snapshot.adapter.tensors.values())
      t.ok(values.every(Number.isFinite), 'its adapter values are finite');
    t.same(await readdir(join(root, 'adapter')).catch(() => []), [], 'no adapter is written');
  },
);

t.test(
  'BAD INPUT - nothing is overwritten or mixed up: outputs, checkpoints, settings',
  async (t) => {
    const setUp = await setup(t);
    if (!setUp) return;
    const { root, model, data } = setUp;
    await writeFile(join(root, 'keep.txt'), 'mine');
    await t.rejects(finetune({ ...run(model, data, root), out: root }), {
      code: OutputExistsError.code,
    });
    await t.rejects(finetune({ ...run(model, data, join(root, 'r')), resume: true }), {
      code: TrainingCheckpointInvalidError.code,
      message: /holds no checkpoint to resume/,
    });
    await t.rejects(finetune(run(model, data, join(root, 'x'), { seqLen: 4096 })), {
      code: ContextOverflowError.code,
    });
    const published: FinetuneEvent[] = [];
    const listen = (event: unknown) => published.push(event as FinetuneEvent);
    subscribe(FINETUNE_CHANNEL, listen);
    try {
      await finetune(run(model, data, join(root, 'y'), { steps: 2 }));
    } finally {
      unsubscribe(FINETUNE_CHANNEL, listen);
    }
    t.same(
      published.map((e) => (e.type === 'step' ? `step ${e.step}` : e.type)),
      ['start', 'step 1', 'step 2', 'checkpoint'],
      `progress is published on ${FINETUNE_CHANNEL}`,
    );
    await t.rejects(finetune(run(model, data, join(root, 'y'), { steps: 2 })), {
      code: OutputExistsError.code,
    });
    await t.rejects(
      finetune({
        ...run(model, data, join(root, 'y'), { steps: 2, learningRate: 1e-3 }),
        out: join(root, 'y2'),
        resume: true,
      }),
      {
        code: TrainingCheckpointInvalidError.code,
        message: /learningRate = 0.003, this run has 0.001/,
      },
    );
    t.equal(await readFile(join(root, 'keep.txt'), 'utf8'), 'mine');
  },
);
