/**
 * GGUF through the CLI: `model pull hf:OWNER/NAME --file X.gguf` from a local stand-in for the
 * Hub (127.0.0.1:0) downloads just that file, checks its sha256, imports it and generates
 * llama.cpp's text; `model import gguf` prints what each type became; `model inspect` shows a
 * GGUF file and a model dir made from one; a missing file is a coded error listing the GGUFs.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { llamaCppGreedy, SHARED_GGUF } from './helpers/gguf-fixtures.js';
import { startHubServer } from './helpers/hub-server.js';
import { haveSharedModel } from './helpers/shared-models.js';

t.test('pull one GGUF file of a Hub repository, then inspect and generate', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.stories260kF16)) return;
  const root = t.testdir();
  const server = await startHubServer();
  t.teardown(() => server.close());
  server.repos.set(
    'test/stories-gguf',
    new Map([
      ['README.md', { bytes: Buffer.from('# stories\n') }],
      ['stories260K-f16.gguf', { bytes: await readFile(SHARED_GGUF.stories260kF16) }],
      ['stories260K-f32.gguf', { bytes: await readFile(SHARED_GGUF.stories260kF32) }],
    ]),
  );
  const env = { SWARMBEE_HF_ENDPOINT: server.url, SWARMBEE_CACHE_DIR: root };
  const out = join(root, 'model');
  const pull = await runCli(
    ['model', 'pull', 'hf:test/stories-gguf', '--file', 'stories260K-f16.gguf', '--out', out],
    { env },
  );
  t.equal(pull.code, 0, pull.stderr);
  t.match(pull.stderr, /stories260K-f16\.gguf.*sha256/s, 'checked against the listed sha256');
  t.same(
    server.requests.filter((r) => r.path.includes('/resolve/')).map((r) => r.path.split('/').pop()),
    ['stories260K-f16.gguf'],
    'only the asked-for file is downloaded',
  );
  const inspect = await runCli(['model', 'inspect', out]);
  t.match(inspect.stdout, /gguf llama \(test\/stories-gguf\)/, 'the source');
  t.match(inspect.stdout, /stories260K-f16\.gguf \(GGUF v3, llama/, 'the file');
  t.match(inspect.stdout, /llama\.context_length\s+│ 128/, 'its metadata');
  t.match(
    inspect.stdout,
    /layers\.0\.wqkv\s+│ fp32\s+│ blk\.0\.attn_q\.weight F16 dequantized/,
    'where each tensor came from',
  );
  const [run] = llamaCppGreedy('stories260K-f16.gguf');
  const generated = await runCli([
    'generate',
    '--model',
    out,
    '--prompt',
    run!.prompt,
    '--steps',
    String(run!.prompt_ids.length + 63),
    '--temperature',
    '0',
    '--json',
  ]);
  t.equal(generated.code, 0, generated.stderr);
  t.same(
    (JSON.parse(generated.stdout) as { token_ids: number[] }).token_ids,
    [...run!.prompt_ids, ...run!.greedy_ids],
    "llama.cpp's ids",
  );

  const missing = await runCli(
    ['model', 'pull', 'hf:test/stories-gguf', '--file', 'nope.gguf', '--out', join(root, 'x')],
    { env },
  );
  t.equal(missing.code, 1);
  t.match(
    missing.stderr,
    /SWARMBEE_ERR_HF_CHECKPOINT_INVALID.*no file nope\.gguf; its GGUF files: stories260K-f16\.gguf, stories260K-f32\.gguf/,
  );
});

t.test('model import gguf prints each conversion; inspect reads a .gguf file', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.synthqQ4KM)) return;
  const root = t.testdir();
  const imported = await runCli([
    'model',
    'import',
    'gguf',
    SHARED_GGUF.synthqQ4KM,
    '--out',
    join(root, 'm'),
  ]);
  t.equal(imported.code, 0, imported.stderr);
  t.match(
    imported.stderr,
    /Q4_K → int8\/32 \(requantized\)\s+│ \d+\s+│ \d\.\d+e-3/,
    'Q4_K re-quantized to int8, with its error',
  );
  t.match(
    imported.stderr,
    /Q6_K → int8\/16 \(mapped\)\s+│ \d+\s+│ none/,
    'Q6_K mapped without loss',
  );
  const exact = await runCli([
    'model',
    'import',
    'gguf',
    SHARED_GGUF.synthqQ4KM,
    '--out',
    join(root, 'e'),
    '--requantize',
    'fp32',
  ]);
  t.match(exact.stderr, /Q4_K → fp32 \(dequantized\)/, '--requantize fp32 keeps ggml’s values');
  const file = await runCli(['model', 'inspect', SHARED_GGUF.synthqQ4KM]);
  t.equal(file.code, 0, file.stderr);
  t.match(file.stdout, /blk\.0\.attn_v\.weight\s+│ Q4_K/);
  t.match(file.stdout, /general\.file_type\s+│ 15/);
  const bad = await runCli([
    'model',
    'import',
    'gguf',
    SHARED_GGUF.synthqQ4KM,
    '--out',
    join(root, 'f'),
    '--requantize',
    'fp16',
  ]);
  t.equal(bad.code, 2, 'a precision it does not store is a usage error, not ignored');
});
