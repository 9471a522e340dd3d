/**
 * The coordinator's recent benchmark runs (--bench-dir): listed newest first from the
 * directory alone, a run's result.json and .svg charts served behind the key as inert
 * text, and nothing else: no other file, nothing outside the directory, however named.
 */
import { mkdir, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { listBenchRuns, MAX_BENCH_FILE_BYTES, readBenchFile } from '../src/console/bench-runs.js';
import { startLocalApi } from './helpers/local-api.js';

const KEY = 'bench-key';

/** A benchmark directory: two runs, a directory that is no run, and a secret beside it. */
async function benchDir(root: string): Promise<string> {
  const dir = join(root, 'bench-results');
  for (const [name, seconds] of [
    ['decode-2026-12-01', 1000],
    ['decode-2026-12-02', 2000],
  ] as const) {
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(
      join(dir, name, 'result.json'),
      JSON.stringify({ suite: 'decode', title: name }),
    );
    await writeFile(join(dir, name, 'decode.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await writeFile(join(dir, name, 'notes.txt'), 'not served');
    await utimes(join(dir, name, 'result.json'), seconds, seconds);
  }
  await mkdir(join(dir, 'empty'), { recursive: true });
  await mkdir(join(dir, '.hidden'), { recursive: true });
  await writeFile(join(dir, '.hidden', 'result.json'), '{}');
  await writeFile(join(root, 'secret.json'), '{"secret":true}');
  // Links out of the directory: a whole run, and one file of a run.
  await mkdir(join(root, 'elsewhere'), { recursive: true });
  await writeFile(join(root, 'elsewhere', 'result.json'), '{"secret":true}');
  await symlink(join(root, 'elsewhere'), join(dir, 'linked-run'));
  await symlink(join(root, 'secret.json'), join(dir, 'decode-2026-12-01', 'linked.svg'));
  return dir;
}

t.test('runs are listed newest first, from directories that hold a result.json', async (t) => {
  const dir = await benchDir(t.testdir());
  t.same(
    (await listBenchRuns(dir)).map((run) => [run.name, run.writtenAt]),
    [
      ['decode-2026-12-02', 2_000_000],
      ['decode-2026-12-01', 1_000_000],
    ],
  );
  t.same(await listBenchRuns(join(dir, 'missing')), [], 'a missing directory lists nothing');
});

t.test("a run's result and charts are read; nothing else is", async (t) => {
  const root = t.testdir();
  const dir = await benchDir(root);
  const text = async (run: string, file: string) =>
    (await readBenchFile(dir, run, file)).toString('utf8');
  t.match(await text('decode-2026-12-01', 'result.json'), /"suite":"decode"/);
  t.match(await text('decode-2026-12-01', 'decode.svg'), /^<svg/);
  const refused: [string, string][] = [
    ['decode-2026-12-01', 'notes.txt'],
    ['decode-2026-12-01', 'missing.svg'],
    ['decode-2026-12-01', 'linked.svg'],
    ['linked-run', 'result.json'],
    ['..', 'secret.json'],
    ['..', 'result.json'],
    ['.hidden', 'result.json'],
    ['decode-2026-12-01/..', 'result.json'],
    ['decode-2026-12-01', '../decode-2026-12-02/result.json'],
    ['decode-2026-12-01', '.svg'],
    ['', 'result.json'],
  ];
  for (const [run, file] of refused)
    await t.rejects(
      readBenchFile(dir, run, file),
      { code: 'SWARMBEE_ERR_NOT_FOUND' },
      `${run}/${file} is refused`,
    );
  await truncate(join(dir, 'decode-2026-12-02', 'decode.svg'), MAX_BENCH_FILE_BYTES + 1);
  await t.rejects(
    readBenchFile(dir, 'decode-2026-12-02', 'decode.svg'),
    { code: 'SWARMBEE_ERR_NOT_FOUND' },
    'a file over the size bound is refused',
  );
});

t.test(
  'the routes need the key, serve inert text, and say when there is no directory',
  async (t) => {
    // The helper makes the test's directory anew: the runs are written after it started.
    const root = t.testdir();
    const api = await startLocalApi(t, { apiKey: KEY, benchDir: join(root, 'bench-results') });
    if (!api) return;
    await benchDir(root);
    const authorization = `Bearer ${KEY}`;
    const get = (path: string, key = true) =>
      fetch(`${api.url}${path}`, {
        headers: key ? { authorization } : {},
        signal: AbortSignal.timeout(10_000),
      });
    t.equal((await get('/swarmbee/bench', false)).status, 401);
    t.equal((await get('/swarmbee/bench/decode-2026-12-01/result.json', false)).status, 401);
    const list = (await (await get('/swarmbee/bench')).json()) as { runs: { name: string }[] };
    t.same(
      list.runs.map((run) => run.name),
      ['decode-2026-12-02', 'decode-2026-12-01'],
    );
    const chart = await get('/swarmbee/bench/decode-2026-12-01/decode.svg');
    t.equal(chart.status, 200);
    t.equal(
      chart.headers.get('content-type'),
      'text/plain; charset=utf-8',
      'never rendered as SVG',
    );
    t.equal(chart.headers.get('x-content-type-options'), 'nosniff');
    t.match(chart.headers.get('content-security-policy'), /sandbox/);
    t.match(await chart.text(), /^<svg/);
    for (const path of [
      '/swarmbee/bench/decode-2026-12-01/notes.txt',
      '/swarmbee/bench/%2e%2e/secret.json',
      '/swarmbee/bench/decode-2026-12-01/..%2f..%2fsecret.json',
      '/swarmbee/bench/linked-run/result.json',
    ]) {
      const response = await get(path);
      t.equal(response.status, 404, path);
      t.equal(
        ((await response.json()) as { error: { code: string } }).error.code,
        'SWARMBEE_ERR_NOT_FOUND',
      );
    }
  },
);

t.test('without --bench-dir the list answers NOT_FOUND, saying how to have one', async (t) => {
  const api = await startLocalApi(t, { apiKey: KEY });
  if (!api) return;
  const response = await fetch(`${api.url}/swarmbee/bench`, {
    headers: { authorization: `Bearer ${KEY}` },
    signal: AbortSignal.timeout(10_000),
  });
  t.equal(response.status, 404);
  t.match(((await response.json()) as { error: { message: string } }).error.message, /--bench-dir/);
});
