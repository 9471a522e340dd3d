import { generate, LocalPipeline } from '@swarmbee/engine';
import { loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const PROMPTS = [
  '',
  'Once upon a time',
  'The cat',
  'Lily and Tom went to the park',
  'A big red ball',
  'Hi',
  'One day, a little bird',
  'Tim was sad',
];

t.test(
  'a sequence gets the same greedy tokens alone and in a batch of 8 with ragged prompts',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const requests = PROMPTS.map((prompt, i) => ({
      promptIds: tokenizer.encode(prompt),
      steps: 60 + 10 * i,
      sampling: GREEDY,
      stopIds: [1],
    }));
    for (const stages of [1, 2]) {
      const pipeline = await LocalPipeline.create(dir, { stages });
      try {
        const alone: number[][] = [];
        for (const request of requests) alone.push((await generate(pipeline, [request]))[0]!.ids);
        const together = await generate(pipeline, requests, { prefillChunkTokens: 4 });
        for (const [i, result] of together.entries()) {
          t.same(result.ids, alone[i], `${stages} stages, prompt ${JSON.stringify(PROMPTS[i])}`);
        }
      } finally {
        await pipeline.close();
      }
    }
  },
);

t.test('seeded sampling repeats itself and differs across seeds', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const pipeline = await LocalPipeline.create(dir, { stages: 2 });
  try {
    const run = async (seed: number) =>
      (
        await generate(pipeline, [
          { promptIds: [1], steps: 80, sampling: { temperature: 1, topK: 40, topP: 0.9, seed } },
        ])
      )[0]!.ids;
    const a = await run(11);
    t.same(await run(11), a);
    t.notSame(await run(12), a);
  } finally {
    await pipeline.close();
  }
});
