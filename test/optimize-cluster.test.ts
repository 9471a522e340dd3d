/**
 * Quantized models served by real coordinator and worker processes on loopback: shards
 * with MatMulNBits travel, load and run on workers, and a model whose stages differ in
 * precision (int4 then fp32) generates exactly what the same model does in process.
 */
import { join } from 'node:path';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { decodeIds, loadTokenizer, type ModelDir, quantizeModel } from '@swarmbee/model';
import t from 'tap';
import { complete, startCluster } from './helpers/cluster.js';
import { stories260kDir } from './helpers/stories260k.js';

const PROMPT = 'Once upon a time';
const STEPS = 64;

/** What the model writes alone in this process: the text the cluster must serve. */
async function inProcessText(dir: ModelDir): Promise<string> {
  const tokenizer = await loadTokenizer(dir);
  const pipeline = await LocalPipeline.create(dir, { stages: 1, threaded: false });
  try {
    const [out] = await generate(pipeline, [
      {
        promptIds: tokenizer.encode(PROMPT),
        steps: STEPS,
        sampling: { temperature: 0, topK: 0, topP: 1 },
        stopIds: [...tokenizer.stopIds],
      },
    ]);
    return decodeIds(tokenizer, out!.ids);
  } finally {
    await pipeline.close();
  }
}

t.test('int4 + fp32 stages over 2 workers and int8 over 3 generate as in process', async (t) => {
  const root = t.testdir();
  const base = await stories260kDir(t, root);
  if (!base) return;
  // The even split of 5 layers over 2 workers is [0, 3) and [3, 5): int4, then fp32.
  const mixed = await quantizeModel(base, { bits: 4, layers: [0, 1, 2], out: join(root, 'mixed') });
  const int8 = await quantizeModel(base, { bits: 8, out: join(root, 'int8') });
  for (const [dir, workers] of [
    [mixed, 2],
    [int8, 3],
  ] as const) {
    const expected = await inProcessText(dir);
    const cluster = await startCluster({
      model: dir.path,
      workers,
      root: join(root, dir.manifest.name),
    });
    t.teardown(() => cluster.stop());
    try {
      const { status, json } = await complete(cluster.apiUrl, {
        prompt: PROMPT,
        steps: STEPS,
        temperature: 0,
        echo: true,
      });
      t.equal(status, 200, JSON.stringify(json.error));
      t.equal(json.choices[0].text, expected, `${dir.manifest.name} over ${workers} workers`);
      for (const worker of cluster.workers) {
        t.match(worker.log(), /received and verified/, 'each worker received its quantized shard');
      }
    } finally {
      await cluster.stop();
    }
  }
});
