/**
 * GGUF files made by llama.cpp's own tools give llama.cpp's own tokens: stories260K at F32
 * and F16 encodes the prompts to llama.cpp's ids and generates llama.cpp's greedy ids
 * token for token (llamacpp_greedy.json, from llama-server), split in 1, 2 and 3 stages,
 * and over worker processes.
 */
import { join } from 'node:path';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { importGguf, loadTokenizer, type ModelDir } from '@swarmbee/model';
import t from 'tap';
import { complete, startCluster } from './helpers/cluster.js';
import { type LlamaCppGreedy, llamaCppGreedy, SHARED_GGUF } from './helpers/gguf-fixtures.js';
import { haveSharedModel } from './helpers/shared-models.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

async function greedyIds(
  dir: ModelDir,
  runs: LlamaCppGreedy[],
  stages: number,
): Promise<number[][]> {
  const pipeline = await LocalPipeline.create(dir, { stages });
  try {
    const results = await generate(
      pipeline,
      runs.map((run) => ({
        promptIds: run.prompt_ids,
        // Positions: the prompt, then as many tokens as llama.cpp generated (the last is sampled, not run).
        steps: run.prompt_ids.length + run.greedy_ids.length - 1,
        sampling: GREEDY,
        stopIds: [],
      })),
    );
    return results.map((r) => r.ids.slice(r.promptTokens));
  } finally {
    await pipeline.close();
  }
}

for (const [file, path] of [
  ['stories260K-f32.gguf', SHARED_GGUF.stories260kF32],
  ['stories260K-f16.gguf', SHARED_GGUF.stories260kF16],
] as const) {
  t.test(`${file}: llama.cpp's prompt ids and greedy ids, in 1, 2 and 3 stages`, async (t) => {
    if (!haveSharedModel(t, path)) return;
    const runs = llamaCppGreedy(file);
    const dir = await importGguf({ file: path, out: join(t.testdir(), 'model') });
    const tokenizer = await loadTokenizer(dir);
    for (const run of runs)
      t.same(
        tokenizer.encode(run.prompt),
        run.prompt_ids,
        `"${run.prompt}" encodes to llama.cpp's ids`,
      );
    for (const stages of [1, 2, 3]) {
      const ids = await greedyIds(dir, runs, stages);
      runs.forEach((run, i) => {
        t.same(
          ids[i],
          run.greedy_ids,
          `${stages} stage${stages > 1 ? 's' : ''}: "${run.prompt}" → llama.cpp's 64 ids`,
        );
      });
    }
  });
}

t.test(
  'stories260K-f16.gguf over two worker processes: llama.cpp’s ids through the API',
  async (t) => {
    if (!haveSharedModel(t, SHARED_GGUF.stories260kF16)) return;
    const root = t.testdir();
    const model = join(root, 'model');
    await importGguf({ file: SHARED_GGUF.stories260kF16, out: model });
    const cluster = await startCluster({ model, workers: 2, root });
    t.teardown(() => cluster.stop());
    for (const run of llamaCppGreedy('stories260K-f16.gguf')) {
      const { status, json } = await complete(cluster.apiUrl, {
        prompt: run.prompt,
        max_tokens: run.greedy_ids.length,
        temperature: 0,
      });
      t.equal(status, 200, json.error?.message ?? 'completed');
      t.same(
        json.choices[0].token_ids,
        [...run.prompt_ids, ...run.greedy_ids],
        `"${run.prompt}": llama.cpp's ids from two workers`,
      );
      t.equal(json.choices[0].text, run.text, "and llama.cpp's text");
    }
  },
);
