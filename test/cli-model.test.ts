/** The `swarmbee` CLI as a user runs it: real processes, real files. */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test('import stories260K, then generate reproduces run.c through the CLI', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = join(root, 's260k');
  const imported = await runCli([
    'model',
    'import',
    'llama2c',
    STORIES260K.checkpoint,
    '--tokenizer',
    STORIES260K.tokenizer,
    '--out',
    model,
  ]);
  t.equal(imported.code, 0, imported.stderr);
  const once = await runCli([
    'generate',
    '--model',
    model,
    '--prompt',
    'Once upon a time',
    '--steps',
    '64',
    '--temperature',
    '0',
    '--stages',
    '2',
    '--json',
  ]);
  t.equal(once.code, 0, once.stderr);
  const line = JSON.parse(once.stdout) as {
    text: string;
    token_ids: number[];
    tokens_per_s: number;
  };
  t.equal(`${line.text}\n`, await readFile(STORIES260K.refOnceUponATime, 'utf8'));
  t.same(line.token_ids.slice(0, 5), [1, 403, 407, 261, 378]);
  t.ok(line.tokens_per_s > 0);
  const streamed = await runCli([
    'generate',
    '--model',
    model,
    '--steps',
    '200',
    '--temperature',
    '0',
    '--ranges',
    '0-1,1-4,4-5',
  ]);
  t.equal(streamed.code, 0, streamed.stderr);
  t.equal(
    streamed.stdout,
    await readFile(STORIES260K.refNoPrompt, 'utf8'),
    'streamed text equals run.c, newline included',
  );
  t.match(streamed.stderr, /achieved tok\/s/);
  const inspect = await runCli(['model', 'inspect', model]);
  t.match(inspect.stdout, /heads \/ kv heads\s+│ 8 \/ 4/);
});

t.test('BAD INPUT - each mistake exits non-zero with a coded message', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = join(root, 's260k');
  t.equal(
    (
      await runCli([
        'model',
        'import',
        'llama2c',
        STORIES260K.checkpoint,
        '--tokenizer',
        STORIES260K.tokenizer,
        '--out',
        model,
      ])
    ).code,
    0,
  );
  const truncated = join(root, 'truncated.bin');
  await writeFile(truncated, (await readFile(STORIES260K.checkpoint)).subarray(0, 50_000));
  const cases: [string, string[], RegExp][] = [
    [
      'truncated checkpoint',
      [
        'model',
        'import',
        'llama2c',
        truncated,
        '--tokenizer',
        STORIES260K.tokenizer,
        '--out',
        join(root, 'out1'),
      ],
      /SWARMBEE_ERR_CHECKPOINT_INVALID.*truncated/,
    ],
    [
      'missing tokenizer',
      ['model', 'import', 'llama2c', STORIES260K.checkpoint, '--out', join(root, 'out2')],
      /SWARMBEE_ERR_TOKENIZER_MISSING.*--tokenizer/,
    ],
    [
      'token id outside the vocabulary',
      ['generate', '--model', model, '--prompt-ids', '1,600', '--steps', '8'],
      /SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB.*vocabulary of 512/,
    ],
    [
      'prompt longer than the context',
      [
        'generate',
        '--model',
        model,
        '--prompt-ids',
        new Array(600).fill(5).join(','),
        '--steps',
        '8',
      ],
      /SWARMBEE_ERR_CONTEXT_OVERFLOW.*600 tokens.*512/,
    ],
    [
      'more stages than layers',
      ['generate', '--model', model, '--stages', '6', '--steps', '8'],
      /SWARMBEE_ERR_STAGE_LAYOUT.*between 1 and 5/,
    ],
    [
      'not a model dir',
      ['generate', '--model', root, '--steps', '8'],
      /SWARMBEE_ERR_MODEL_DIR_INVALID/,
    ],
    [
      'bad ranges',
      ['model', 'shard', model, '--ranges', '0-2,3', '--out', join(root, 'shards')],
      /SWARMBEE_ERR_INVALID_ARGUMENT.*START-END/,
    ],
  ];
  for (const [what, args, message] of cases) {
    const result = await runCli(args);
    t.equal(result.code, 1, `${what}: exit code`);
    t.match(result.stderr, message, what);
  }
  t.notOk(
    existsSync(join(root, 'out1')) || existsSync(join(root, 'out2')),
    'failed imports leave no output dir',
  );
  const usage = await runCli(['generate', '--no-such-flag']);
  t.equal(usage.code, 2, 'an unknown flag is a usage error');
});

t.test('synth writes a llama2.c checkpoint that imports back to the same tokens', async (t) => {
  const root = t.testdir();
  const synth = join(root, 'synth');
  const made = await runCli([
    'model',
    'synth',
    '--preset',
    'tiny',
    '--layers',
    '3',
    '--seed',
    '5',
    '--out',
    synth,
    '--llama2c',
    join(root, 'synth.bin'),
  ]);
  t.equal(made.code, 0, made.stderr);
  const back = join(root, 'back');
  const imported = await runCli([
    'model',
    'import',
    'llama2c',
    join(root, 'synth.bin'),
    '--tokenizer',
    join(root, 'synth.tok.bin'),
    '--out',
    back,
  ]);
  t.equal(imported.code, 0, imported.stderr);
  const args = ['--prompt', 'Once upon a time', '--steps', '40', '--temperature', '0', '--json'];
  const a = await runCli(['generate', '--model', synth, ...args]);
  const b = await runCli(['generate', '--model', back, '--stages', '3', ...args]);
  t.equal(a.code, 0, a.stderr);
  t.same(JSON.parse(b.stdout).token_ids, JSON.parse(a.stdout).token_ids);
  const shards = await runCli([
    'model',
    'shard',
    back,
    '--stages',
    '3',
    '--out',
    join(root, 'shards'),
  ]);
  t.equal(shards.code, 0, shards.stderr);
  t.match(shards.stdout, /\[2, 3\)/);
});
