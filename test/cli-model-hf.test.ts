/** `swarmbee model import hf` as a user runs it: real processes, real files. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { HF_STORIES260K_CONFIG, writeHfStories260K } from './helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test('import hf, then generate streams run.c text through the HF tokenizer', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  await writeHfStories260K(join(root, 'hf'), { dtype: 'F32', shards: 2 });
  const model = join(root, 'model');
  const imported = await runCli(['model', 'import', 'hf', join(root, 'hf'), '--out', model]);
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stdout, /imported hf into/);
  const streamed = await runCli([
    'generate',
    '--model',
    model,
    '--steps',
    '200',
    '--temperature',
    '0',
    '--stages',
    '3',
  ]);
  t.equal(streamed.code, 0, streamed.stderr);
  t.equal(
    streamed.stdout,
    await readFile(STORIES260K.refNoPrompt, 'utf8'),
    'sharded fp32 import, streamed',
  );
});

t.test(
  'a sliding window shorter than the context imports windowed; --context still records a shorter context',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const source = join(root, 'hf');
    await writeHfStories260K(source);
    await writeFile(
      join(source, 'config.json'),
      JSON.stringify({
        ...HF_STORIES260K_CONFIG,
        architectures: ['MistralForCausalLM'],
        model_type: 'mistral',
        sliding_window: 256,
      }),
    );
    const windowed = await runCli(['model', 'import', 'hf', source, '--out', join(root, 'a')]);
    t.equal(windowed.code, 0, windowed.stderr);
    const manifest = JSON.parse(
      (await runCli(['model', 'inspect', join(root, 'a'), '--json'])).stdout,
    );
    t.match(manifest.config, { maxSeqLen: 512, slidingWindow: 256 });
    t.equal(manifest.layers[0].kvWindowTokens, 256, 'KV per layer bounded by the window');
    const fitted = await runCli([
      'model',
      'import',
      'hf',
      source,
      '--out',
      join(root, 'b'),
      '--context',
      '256',
    ]);
    t.equal(fitted.code, 0, fitted.stderr);
    const inspect = await runCli(['model', 'inspect', join(root, 'b'), '--json']);
    t.equal(JSON.parse(inspect.stdout).config.maxSeqLen, 256);
  },
);
