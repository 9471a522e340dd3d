/** `swarmbee optimize ...` as a user runs it: real processes, real model dirs, coded errors. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelSummaryFromManifest } from '@swarmbee/core';
import { openModelDir } from '@swarmbee/model';
import { clusterFromPresets } from '@swarmbee/planner';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test('quantize some layers, eval against fp32, prune a layer', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const q = await runCli([
    'optimize',
    'quantize',
    model,
    '--bits',
    '4',
    '--layers',
    '0-2',
    '--out',
    join(root, 'q'),
  ]);
  t.equal(q.code, 0, q.stderr);
  t.match(q.stdout, /fp32 → int4/);
  t.match(q.stdout, /optimize eval/);
  const evaluated = await runCli([
    'optimize',
    'eval',
    join(root, 'q'),
    '--reference',
    model,
    '--json',
  ]);
  t.equal(evaluated.code, 0, evaluated.stderr);
  const figures = JSON.parse(evaluated.stdout) as { kl: number; top1: number; positions: number };
  t.ok(figures.kl > 0 && figures.kl < 0.5, `KL ${figures.kl}`);
  t.ok(figures.top1 > 0.5 && figures.top1 < 1, `top-1 ${figures.top1}`);
  t.ok(figures.positions > 1000);
  const table = await runCli(['optimize', 'eval', join(root, 'q'), '--reference', model]);
  t.match(table.stdout, /top-1 agreement/);

  const pruned = await runCli([
    'optimize',
    'prune',
    model,
    '--layers',
    '1',
    '--out',
    join(root, 'p'),
    '--speed-rounds',
    '1',
  ]);
  t.equal(pruned.code, 0, pruned.stderr);
  t.match(pruned.stdout, /Block Influence/);
  t.match(pruned.stdout, /decode tokens\/s \(before → after\)/);
  t.equal((await openModelDir(join(root, 'p'))).manifest.config.nLayers, 4);
  const generated = await runCli([
    'generate',
    '--model',
    join(root, 'p'),
    '--prompt',
    'Once upon a time',
    '--steps',
    '32',
    '--temperature',
    '0',
    '--stages',
    '2',
  ]);
  t.equal(generated.code, 0, generated.stderr);
  t.match(generated.stdout, /^Once upon a time/);
});

t.test('search: reproducible with a seed, within the budget and memory', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const dir = await openModelDir(model);
  const profile = join(root, 'profile.json');
  const cluster = clusterFromPresets(
    modelSummaryFromManifest(dir.manifest),
    [
      { name: 'pi-a', preset: 'rpi4-4gb' },
      { name: 'pi-b', preset: 'rpi5-8gb' },
    ],
    undefined,
    '2025-01-01T00:00:00.000Z',
  );
  await writeFile(profile, JSON.stringify(cluster));
  const env = { SWARMBEE_CACHE_DIR: join(root, 'cache') };
  const search = (seed: string) =>
    runCli(
      [
        'optimize',
        'search',
        '--profile',
        profile,
        '--model',
        model,
        '--budget',
        '0.05',
        '--seed',
        seed,
        '--evaluations',
        '100',
        '--timing',
        'bytes',
        '--validate',
        '1',
        '--json',
      ],
      { env, timeoutMs: 120_000 },
    );
  const first = await search('3');
  t.equal(first.code, 0, first.stderr);
  const second = await search('3');
  type Result = {
    klBudget: number;
    baseline?: { config: string[] };
    runs: {
      algorithm: string;
      elapsedMs: number;
      best?: {
        config: string[];
        fidelity: { kl: number };
        plan: { stages: { memoryBytes: number; deviceMemoryBytes: number }[] };
      };
    }[];
    validations: { predicted: { kl: number }; measured: { kl: number } }[];
  };
  const a = JSON.parse(first.stdout) as Result;
  const b = JSON.parse(second.stdout) as Result;
  const strip = (r: Result) => r.runs.map(({ elapsedMs: _, ...run }) => run);
  t.same(strip(a), strip(b), 'the same seed gives the same deployments');
  t.same(a.baseline?.config, ['fp32', 'fp32', 'fp32', 'fp32', 'fp32']);
  for (const run of a.runs) {
    t.ok(run.best, `${run.algorithm} found a deployment`);
    t.ok(run.best!.fidelity.kl <= 0.05, 'within the KL budget');
    t.ok(
      run.best!.config.some((c) => c !== 'fp32'),
      'with bytes-scaled timing, quantizing pays',
    );
    for (const s of run.best!.plan.stages) t.ok(s.memoryBytes <= s.deviceMemoryBytes);
  }
  t.equal(a.validations.length, 1, 'the best configuration measured directly');
  t.ok(a.validations[0]!.measured.kl > 0);
  const text = await runCli(
    [
      'optimize',
      'search',
      '--profile',
      profile,
      '--model',
      model,
      '--budget',
      '0.05',
      '--evaluations',
      '100',
      '--timing',
      'bytes',
    ],
    { env, timeoutMs: 120_000 },
  );
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /fp32 DP/);
  t.match(text.stdout, /hybrid/);
  t.match(text.stdout, /against direct measurement/);
});

t.test('BAD INPUT - optimize refuses what it cannot do, with codes', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const badLayers = await runCli([
    'optimize',
    'quantize',
    model,
    '--bits',
    '8',
    '--layers',
    '3-1',
    '--out',
    join(root, 'x'),
  ]);
  t.equal(badLayers.code, 1);
  t.match(badLayers.stderr, /SWARMBEE_ERR_INVALID_ARGUMENT: --layers: "3-1"/);
  const badBits = await runCli([
    'optimize',
    'quantize',
    model,
    '--bits',
    '3',
    '--out',
    join(root, 'y'),
  ]);
  t.equal(badBits.code, 2, 'a flag outside its choices is a usage error');
  t.match(badBits.stderr, /Argument: bits, Given: 3, Choices: 8, 4/);
  const q = await runCli(['optimize', 'quantize', model, '--bits', '8', '--out', join(root, 'q8')]);
  t.equal(q.code, 0, q.stderr);
  const twice = await runCli([
    'optimize',
    'quantize',
    join(root, 'q8'),
    '--bits',
    '4',
    '--out',
    join(root, 'z'),
  ]);
  t.equal(twice.code, 1);
  t.match(twice.stderr, /SWARMBEE_ERR_QUANTIZATION_UNSUPPORTED: layer 0 is already int8/);
  const shortCorpus = join(root, 'short.txt');
  await writeFile(shortCorpus, 'Tiny.');
  const short = await runCli([
    'optimize',
    'eval',
    join(root, 'q8'),
    '--reference',
    model,
    '--corpus',
    shortCorpus,
  ]);
  t.equal(short.code, 1);
  t.match(short.stderr, /SWARMBEE_ERR_CORPUS_INVALID: .*predicted tokens; fidelity needs at least/);
  const synth = await runCli([
    'model',
    'synth',
    '--preset',
    'tiny',
    '--seed',
    '1',
    '--out',
    join(root, 'synth'),
  ]);
  t.equal(synth.code, 0, synth.stderr);
  const mismatch = await runCli(['optimize', 'eval', join(root, 'synth'), '--reference', model]);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /SWARMBEE_ERR_MODEL_MISMATCH/);
  const tooMany = await runCli([
    'optimize',
    'prune',
    model,
    '--layers',
    '5',
    '--out',
    join(root, 'p'),
  ]);
  t.equal(tooMany.code, 1);
  t.match(tooMany.stderr, /SWARMBEE_ERR_PRUNE_INVALID: --layers must be between 1 and 4/);
  const profile = join(root, 'profile.json');
  const other = await openModelDir(join(root, 'synth'));
  await writeFile(
    profile,
    JSON.stringify(
      clusterFromPresets(modelSummaryFromManifest(other.manifest), [
        { name: 'pi', preset: 'rpi4-4gb' },
      ]),
    ),
  );
  const wrongProfile = await runCli([
    'optimize',
    'search',
    '--profile',
    profile,
    '--model',
    model,
    '--budget',
    '0.1',
  ]);
  t.equal(wrongProfile.code, 1);
  t.match(wrongProfile.stderr, /SWARMBEE_ERR_MODEL_MISMATCH: the profile was measured for/);
  const quantizedSearch = await runCli([
    'optimize',
    'search',
    '--profile',
    profile,
    '--model',
    join(root, 'q8'),
    '--budget',
    '0.1',
  ]);
  t.equal(quantizedSearch.code, 1);
  t.match(
    quantizedSearch.stderr,
    /SWARMBEE_ERR_MODEL_MISMATCH|SWARMBEE_ERR_QUANTIZATION_UNSUPPORTED/,
  );
});
