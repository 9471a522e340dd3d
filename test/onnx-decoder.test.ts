/**
 * An imported ONNX decoder end to end through real processes: `model import onnx`,
 * `generate` with the README's prompt ids, a cluster of a coordinator and two
 * worker processes (shards cut on demand, transferred, loaded by the decoder
 * engine), `swarmbee up`, and the coded errors for bad input.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { complete, startCluster } from './helpers/cluster.js';
import { GPT2_GOLDEN } from './helpers/gpt2-reference.js';
import { decoderWithoutPast } from './helpers/onnx-variants.js';
import { haveSharedModel, TINY_GPT2 } from './helpers/shared-models.js';

const PROMPT_IDS = GPT2_GOLDEN.prompts.map((p) => p.join(',')).join(';');
/** The golden result holds 10 tokens; `--steps` counts positions as run.c does (at most steps + 1 tokens). */
const STEPS = GPT2_GOLDEN.ids[0]!.length - 1;

async function importGpt2(root: string): Promise<string> {
  const out = join(root, 'gpt2');
  const result = await runCli([
    'model',
    'import',
    'onnx',
    TINY_GPT2.onnx,
    '--out',
    out,
    '--no-tokenizer',
  ]);
  if (result.code !== 0) throw new Error(result.stderr);
  return out;
}

t.test('model import onnx, then generate gives the README golden ids, split or not', async (t) => {
  if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
  const root = t.testdir();
  const model = await importGpt2(root);
  const inspect = await runCli(['model', 'inspect', model, '--json']);
  t.match(JSON.parse(inspect.stdout), { architecture: 'onnx-decoder', config: { nLayers: 5 } });
  const table = await runCli(['model', 'inspect', model]);
  t.match(table.stdout, /cut before layer.*\n(.*\n)*.*\/transformer\/h\.0\/Add_1_output_0/);
  for (const split of [[], ['--stages', '5'], ['--ranges', '0-2,2-5']]) {
    const result = await runCli([
      'generate',
      '--model',
      model,
      '--prompt-ids',
      PROMPT_IDS,
      '--steps',
      String(STEPS),
      '--temperature',
      '0',
      '--json',
      ...split,
    ]);
    t.equal(result.code, 0, result.stderr);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    t.same(
      lines.map((l) => l.token_ids),
      GPT2_GOLDEN.ids,
      `generate ${split.join(' ') || '(one stage)'}`,
    );
  }
  const shards = await runCli([
    'model',
    'shard',
    model,
    '--stages',
    '2',
    '--out',
    join(root, 'shards'),
  ]);
  t.equal(shards.code, 0, shards.stderr);
  t.match(shards.stdout, /stage-1-layers-3-5/);
});

t.test(
  'BAD INPUT - out-of-vocabulary ids and graphs without layers get coded errors',
  async (t) => {
    const root = t.testdir();
    const flat = join(root, 'flat.onnx');
    await writeFile(flat, decoderWithoutPast());
    const noLayers = await runCli([
      'model',
      'import',
      'onnx',
      flat,
      '--out',
      join(root, 'x'),
      '--context',
      '8',
    ]);
    t.equal(noLayers.code, 1);
    t.match(noLayers.stderr, /SWARMBEE_ERR_ONNX_LAYERS_NOT_FOUND.*looked for past_L/);
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const model = await importGpt2(root);
    const bad = await runCli([
      'generate',
      '--model',
      model,
      '--prompt-ids',
      '0,50256',
      '--steps',
      '4',
    ]);
    t.equal(bad.code, 1);
    t.match(bad.stderr, /SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB.*vocabulary of 1000/);
    t.notMatch(bad.stderr, /index out of range/);
  },
);

t.test(
  'two worker processes serve the imported model: shards transferred, golden ids via the API',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const root = t.testdir();
    const model = await importGpt2(root);
    const cluster = await startCluster({
      model,
      workers: 2,
      root,
    });
    t.teardown(() => cluster.stop());
    // Both prompts at once, so the coordinator batches their rows into shared micro-batches.
    const results = await Promise.all(
      GPT2_GOLDEN.prompts.map((prompt) =>
        complete(cluster.apiUrl, { prompt, steps: STEPS, temperature: 0 }),
      ),
    );
    for (const [i, result] of results.entries()) {
      t.equal(result.status, 200, `prompt ${i} answered`);
      t.same(
        result.json.choices[0].token_ids,
        GPT2_GOLDEN.ids[i],
        `prompt ${GPT2_GOLDEN.prompts[i]}`,
      );
    }
    for (const worker of cluster.workers)
      t.match(worker.log(), /received and verified/, 'shard sent to the worker');
    t.match(cluster.workers[0]!.log(), /layers \[0, 3\)/);
    t.match(cluster.workers[1]!.log(), /layers \[3, 5\)/);
    const bad = await complete(cluster.apiUrl, { prompt: [0, 1000], max_tokens: 2 });
    t.equal(bad.status, 400);
    t.equal(bad.json.error.code, 'SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB');
    const text = await complete(cluster.apiUrl, { prompt: 'hello', max_tokens: 2 });
    t.equal(text.status, 400);
    t.match(text.json.error, {
      code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
      message: /no tokenizer.*token ids/,
    });
    const again = await complete(cluster.apiUrl, {
      prompt: GPT2_GOLDEN.prompts[1],
      steps: STEPS,
      temperature: 0,
    });
    t.same(again.json.choices[0].token_ids, GPT2_GOLDEN.ids[1], 'still serving after bad requests');
  },
);

t.test('swarmbee up --model runs an imported decoder without a tokenizer', async (t) => {
  if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
  const root = t.testdir();
  const model = await importGpt2(root);
  const result = await runCli(
    ['up', '--model', model, '--workers', '2', '--api', '127.0.0.1:0', '--no-serve'],
    { env: { SWARMBEE_CACHE_DIR: join(root, 'cache') }, timeoutMs: 120_000 },
  );
  t.equal(result.code, 0, result.stderr.slice(-2000));
  t.match(result.stdout, /Plan for tiny-random-gpt2-fp32 over 2 worker\(s\)/);
  t.match(result.stdout, /has no tokenizer: no text demo/);
});
