/**
 * `swarmbee model pull` against a local stand-in for the Hub (127.0.0.1:0): a
 * dropped connection is resumed with Range, every file is checked, the imported
 * model writes run.c's text; 404, checksum and no-network failures are coded.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { writeHfStories260K } from './helpers/hf-stories260k.js';
import { closedPort, type HubServer, startHubServer } from './helpers/hub-server.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const CHECKPOINT = '/karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin';
const HF_WEIGHTS = '/test/stories260k-hf/resolve/main/model.safetensors';

async function serveStories(server: HubServer, root: string): Promise<void> {
  server.repos.set(
    'karpathy/tinyllamas',
    new Map([
      ['stories260K/stories260K.bin', { bytes: await readFile(STORIES260K.checkpoint) }],
      ['stories260K/tok512.bin', { bytes: await readFile(STORIES260K.tokenizer) }],
    ]),
  );
  const hf = join(root, 'hf-source');
  await writeHfStories260K(hf, { dtype: 'F16' });
  const files = new Map<string, { bytes: Buffer }>();
  for (const name of await readdir(hf)) files.set(name, { bytes: await readFile(join(hf, name)) });
  server.repos.set('test/stories260k-hf', files);
}

async function generateOnce(model: string): Promise<string> {
  const result = await runCli([
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
  ]);
  return result.stdout;
}

t.test('pull a known llama2.c model: a dropped connection resumes with Range', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const server = await startHubServer();
  t.teardown(() => server.close());
  await serveStories(server, root);
  server.dropOnce.add(CHECKPOINT);
  const out = join(root, 's260k');
  const pulled = await runCli([
    'model',
    'pull',
    'stories260K',
    '--out',
    out,
    '--hub-url',
    server.url,
    '--download-dir',
    join(root, 'downloads'),
  ]);
  t.equal(pulled.code, 0, pulled.stderr);
  const ranges = server.requests.filter((r) => r.path === CHECKPOINT).map((r) => r.range);
  t.equal(ranges.length, 2);
  t.equal(ranges[0], undefined);
  const resumedAt = Number(ranges[1]?.match(/^bytes=(\d+)-$/)?.[1]);
  t.ok(resumedAt > 0 && resumedAt <= 1_056_540 / 2, `the retry resumes at byte ${resumedAt}`);
  t.match(pulled.stderr, /stories260K\.bin.*sha256.*resumed/s, 'reports what was verified');
  t.match(pulled.stdout, /pulled stories260K into/);
  t.equal(await generateOnce(out), await readFile(STORIES260K.refOnceUponATime, 'utf8'));
  t.notOk(
    (await readdir(join(root, 'downloads'))).some((f) => f.endsWith('.partial')),
    'no .partial file remains',
  );
});

t.test('pull hf:owner/name: interrupted with no retries, run again resumes', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const server = await startHubServer();
  t.teardown(() => server.close());
  await serveStories(server, root);
  server.dropOnce.add(HF_WEIGHTS);
  const downloads = join(root, 'downloads');
  const out = join(root, 'hf');
  const args = ['model', 'pull', 'hf:test/stories260k-hf', '--out', out, '--retries', '0'];
  const env = { SWARMBEE_HF_ENDPOINT: server.url, SWARMBEE_CACHE_DIR: root };
  const first = await runCli(args, { env });
  t.equal(first.code, 1, 'the first run fails');
  t.match(first.stderr, /SWARMBEE_ERR_NETWORK_UNAVAILABLE.*run the same command again to resume/);
  t.ok(existsSync(join(downloads, 'test--stories260k-hf', 'model.safetensors.partial')));
  t.notOk(existsSync(out), 'no model dir after a failed pull');
  const second = await runCli(args, { env });
  t.equal(second.code, 0, second.stderr);
  const ranges = server.requests.filter((r) => r.path === HF_WEIGHTS).map((r) => r.range);
  t.equal(ranges.length, 2);
  t.match(ranges[1], /^bytes=\d+-$/, 'the second run asks only for the rest');
  t.match(second.stderr, /model\.safetensors.*sha256.*resumed/s);
  t.match(second.stderr, /config\.json.*git-sha1/s, 'small files are checked by git blob id');
  const inspect = await runCli(['model', 'inspect', out]);
  t.match(inspect.stdout, /hf LlamaForCausalLM \(test\/stories260k-hf\)/);
  t.match(inspect.stdout, /tokenizer\s+│ hf \(tokenizer\.json\)/);
  t.equal(await generateOnce(out), await readFile(STORIES260K.refOnceUponATime, 'utf8'));
});

t.test('BAD PULL - not found, checksum mismatch, no network, unknown name', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const server = await startHubServer();
  t.teardown(() => server.close());
  await serveStories(server, root);
  const tampered = server.repos.get('test/stories260k-hf')!.get('model.safetensors')!;
  server.repos.set(
    'test/tampered',
    new Map([
      ...server.repos.get('test/stories260k-hf')!,
      ['model.safetensors', { ...tampered, listedSha256: '0'.repeat(64) }],
    ]),
  );
  // A wrong stories15M: the Hub lists a file that is not the published checkpoint's size.
  server.repos.set(
    'karpathy/tinyllamas',
    new Map([['stories15M.bin', { bytes: Buffer.alloc(64) }]]),
  );
  const pull = (target: string, hubUrl = server.url, ...more: string[]) =>
    runCli([
      'model',
      'pull',
      target,
      '--out',
      join(root, `out-${target.replace(/\W/g, '_')}`),
      '--hub-url',
      hubUrl,
      '--download-dir',
      join(root, 'downloads', target.replace(/\W/g, '_')),
      ...more,
    ]);
  const cases: [string, Promise<{ code: number | null; stderr: string }>, RegExp][] = [
    [
      'repository not found',
      pull('hf:nobody/nothing'),
      /SWARMBEE_ERR_DOWNLOAD_NOT_FOUND.*hf:nobody\/nothing does not exist/,
    ],
    [
      'checksum mismatch',
      pull('hf:test/tampered'),
      /SWARMBEE_ERR_DOWNLOAD_CHECKSUM.*sha256 is [0-9a-f]{64} but should be 0{64}/,
    ],
    [
      'wrong size of a known checkpoint',
      pull('stories15M'),
      /SWARMBEE_ERR_HF_CHECKPOINT_INVALID.*64 bytes; the published checkpoint is 60816028 bytes/,
    ],
    [
      'no network',
      pull('hf:test/stories260k-hf', `http://127.0.0.1:${await closedPort()}`, '--retries', '1'),
      /SWARMBEE_ERR_NETWORK_UNAVAILABLE.*ECONNREFUSED/,
    ],
    [
      'unknown name',
      pull('stories9000'),
      /SWARMBEE_ERR_INVALID_ARGUMENT.*stories15M.*hf:owner\/name/,
    ],
  ];
  for (const [what, result, message] of cases) {
    const { code, stderr } = await result;
    t.equal(code, 1, `${what}: exit code`);
    t.match(stderr, message, what);
  }
  t.notOk(
    existsSync(join(root, 'downloads', 'hf_test_tampered', 'model.safetensors')),
    'a file that fails its check is removed',
  );
});
