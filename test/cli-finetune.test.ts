/** `swarmbee finetune` and `generate --adapter` as a user runs them: real processes, coded errors. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterBaseMismatchError,
  AdapterUnsupportedError,
  ContextOverflowError,
  TrainingDataInvalidError,
} from '@swarmbee/core';
import { ADAPTER_CONFIG_FILE, readPeftAdapter } from '@swarmbee/model';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { haveSharedModel, REPO_ROOT, STORIES260K } from './helpers/shared-models.js';

const CORPUS = join(REPO_ROOT, 'packages', 'bench', 'corpus');
const GREEDY = ['--temperature', '0', '--steps', '48', '--prompt', 'Once upon a time'];

t.test(
  'finetune on the lighthouse stories, then generate with and without the adapter',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const adapter = join(root, 'lighthouse');
    const trained = await runCli(
      [
        'finetune',
        '--model',
        model,
        '--data',
        join(CORPUS, 'lighthouse.jsonl'),
        '--eval-data',
        join(CORPUS, 'lighthouse-heldout.jsonl'),
        '--out',
        adapter,
        '--targets',
        'all',
        '--rank',
        '4',
        '--lr',
        '3e-3',
        '--steps',
        '12',
        '--stages',
        '2',
        '--threads',
        '1',
        '--json',
      ],
      { timeoutMs: 240_000 },
    );
    t.equal(trained.code, 0, trained.stderr);
    const result = JSON.parse(trained.stdout) as {
      steps: number;
      adapterDir: string;
      eval: { before: { perplexity: number }; after: { perplexity: number } }[];
    };
    t.equal(result.steps, 12);
    t.ok(
      result.eval[0]!.after.perplexity < 0.8 * result.eval[0]!.before.perplexity,
      `held-out perplexity ${result.eval[0]!.before.perplexity} → ${result.eval[0]!.after.perplexity}`,
    );
    t.match(trained.stderr, /eval after step 12/);
    const config = JSON.parse(await readFile(join(adapter, ADAPTER_CONFIG_FILE), 'utf8')) as {
      r: number;
      target_modules: string[];
    };
    t.equal(config.r, 4);
    t.equal(config.target_modules.length, 7);
    t.equal((await readPeftAdapter(adapter)).spec.layers.length, 5);

    const base = await runCli(['generate', '--model', model, ...GREEDY]);
    const adapted = await runCli(['generate', '--model', model, '--adapter', adapter, ...GREEDY]);
    t.equal(base.code, 0, base.stderr);
    t.equal(adapted.code, 0, adapted.stderr);
    const reference = await readFile(STORIES260K.refOnceUponATime, 'utf8');
    t.ok(reference.startsWith(base.stdout.trimEnd()), "without --adapter: run.c's text");
    t.not(adapted.stdout, base.stdout, 'with it: other text');

    const synth = join(root, 'synth');
    t.equal((await runCli(['model', 'synth', '--preset', 'tiny', '--out', synth])).code, 0);
    const other = await runCli(['generate', '--model', synth, '--adapter', adapter, ...GREEDY]);
    t.equal(other.code, 1);
    t.match(
      other.stderr,
      AdapterBaseMismatchError.code,
      'an adapter of another base model is refused',
    );
    const int8 = join(root, 'int8');
    t.equal((await runCli(['optimize', 'quantize', model, '--bits', '8', '--out', int8])).code, 0);
    const quantized = await runCli(['generate', '--model', int8, '--adapter', adapter, ...GREEDY]);
    t.equal(quantized.code, 1);
    t.match(
      quantized.stderr,
      AdapterUnsupportedError.code,
      'merging into int8 codes is refused, with what to do instead',
    );
    t.match(quantized.stderr, /merge into the fp32 model it was quantized from/);

    // A coordinator checks its adapter before it listens.
    const serve = (dir: string, ...flags: string[]) =>
      runCli([
        'coordinator',
        '--model',
        dir,
        '--listen',
        '127.0.0.1:0',
        '--api',
        '127.0.0.1:0',
        '--cache-dir',
        join(root, 'coordinator'),
        '--token',
        'cli-finetune-token',
        ...flags,
      ]);
    const mismatch = await serve(synth, '--adapter', `lighthouse=${adapter}`);
    t.equal(mismatch.code, 1);
    t.match(mismatch.stderr, AdapterBaseMismatchError.code, 'coordinator: another base refused');
    const merged = await serve(synth, '--merge-adapter', `lighthouse=${adapter}`);
    t.equal(merged.code, 1);
    t.match(merged.stderr, AdapterBaseMismatchError.code, 'also the one it would merge');
    const sameName = await serve(model, '--adapter', `a=${adapter}`, '--adapter', `a=${adapter}`);
    t.equal(sameName.code, 1);
    t.match(sameName.stderr, /two adapters are named "a"/);
    const twice = await serve(
      model,
      ...['--merge-adapter', `a=${adapter}`, '--merge-adapter', `b=${adapter}`],
    );
    t.equal(twice.code, 1);
    t.match(twice.stderr, /--merge-adapter was given 2 times: one adapter merges into the shards/);
    const both = await serve(model, '--merge-adapter', `a=${adapter}`, '--adapter', `b=${adapter}`);
    t.equal(both.code, 1);
    t.match(both.stderr, /--merge-adapter and --adapter do not mix/);
  },
);

t.test('BAD INPUT - finetune names the bad record and the long one', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const data = join(root, 'bad.jsonl');
  await writeFile(data, '{"text": "Once upon a time"}\n{"text": "fine"}\n{"txt": "oops"}\n');
  const bad = await runCli([
    'finetune',
    '--model',
    model,
    '--data',
    data,
    '--out',
    join(root, 'a'),
  ]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, `${TrainingDataInvalidError.code}: ${data}:3:`);
  await writeFile(
    data,
    `{"text": "short"}\n${JSON.stringify({ text: 'the cat sat on the mat. '.repeat(20) })}\n`,
  );
  const long = await runCli([
    'finetune',
    '--model',
    model,
    '--data',
    data,
    '--out',
    join(root, 'a'),
    '--seq-len',
    '32',
  ]);
  t.equal(long.code, 1);
  t.match(long.stderr, `${ContextOverflowError.code}: ${data}:2: the record is`);
  const huge = await runCli([
    'finetune',
    '--model',
    model,
    '--data',
    data,
    '--out',
    join(root, 'a'),
    '--seq-len',
    '100000',
  ]);
  t.match(huge.stderr, ContextOverflowError.code, '--seq-len beyond the context');
  const targets = await runCli([
    'finetune',
    '--model',
    model,
    '--data',
    data,
    '--out',
    join(root, 'a'),
    '--targets',
    'q,v',
  ]);
  t.equal(targets.code, 1);
  t.match(targets.stderr, /--targets: "q" is not one of q_proj/);
  const shape = await runCli([
    'finetune',
    '--model',
    model,
    '--data',
    data,
    '--out',
    join(root, 'a'),
    '--batch-size',
    '6',
    '--micro-batch-size',
    '4',
  ]);
  t.match(shape.stderr, /--batch-size 6 is not a multiple of --micro-batch-size 4/);
});
