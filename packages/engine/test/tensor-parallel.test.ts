/**
 * Tensor-parallel stages in process: stories260K (4 KV heads, 172 feed-forward columns)
 * split across groups of 2, 3 (uneven) and 4 members, alone and inside pipelines, with the
 * LM head on the leader or split by vocabulary, must give run.c's greedy text (logits and
 * written shards: tensor-parallel-logits.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { generate, LocalPipeline, type Pipeline } from '@swarmbee/engine';
import { decodeIds, type LlamaModelDir, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** Stage layouts: layer ranges and, per stage, its group's member speeds. */
const LAYOUTS = [
  { name: 'TP2', stages: 1, groups: [[1, 1]] },
  { name: 'TP3 at speeds 2:1:1 (KV heads 2, 1, 1)', stages: 1, groups: [[2, 1, 1]] },
  { name: 'TP4', stages: 1, groups: [[1, 1, 1, 1]] },
  {
    name: '2 stages x TP2',
    stages: 2,
    groups: [
      [1, 1],
      [1, 1],
    ],
  },
  {
    name: '3 stages: one engine, TP3 at 1:2:1, TP2',
    stages: 3,
    groups: [undefined, [1, 2, 1], [1, 1]],
  },
  {
    name: 'TP3 at 2:1:1, the head split by vocabulary',
    stages: 1,
    groups: [[2, 1, 1]],
    splitVocab: true,
  },
  {
    name: '2 stages: one engine, TP4 with the head split by vocabulary',
    stages: 2,
    groups: [undefined, [1, 1, 1, 1]],
    splitVocab: true,
  },
];

async function greedyText(pipeline: Pipeline, dir: LlamaModelDir, prompt: string, steps: number) {
  const tokenizer = await loadTokenizer(dir);
  const [out] = await generate(pipeline, [
    { promptIds: tokenizer.encode(prompt), steps, sampling: GREEDY, stopIds: [1] },
  ]);
  // run.c ends its output with a newline.
  return `${decodeIds(tokenizer, out!.ids)}\n`;
}

t.test('stories260K greedy text equals run.c in tensor-parallel stages', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const refNoPrompt = await readFile(STORIES260K.refNoPrompt, 'utf8');
  const refOnce = await readFile(STORIES260K.refOnceUponATime, 'utf8');
  for (const layout of LAYOUTS) {
    const pipeline = await LocalPipeline.create(dir, {
      stages: layout.stages,
      groups: layout.groups,
      ...(layout.splitVocab ? { splitVocab: true } : {}),
      stage: { intraOpThreads: 1 },
    });
    try {
      t.equal(
        await greedyText(pipeline, dir, '', 200),
        refNoPrompt,
        `${layout.name}: no prompt, 200 steps`,
      );
      t.equal(
        await greedyText(pipeline, dir, 'Once upon a time', 64),
        refOnce,
        `${layout.name}: "Once upon a time", 64 steps`,
      );
    } finally {
      await pipeline.close();
    }
  }
});
