/** The quick start's main job: `swarmbee up` on the embedded default model. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { REPO_ROOT } from './helpers/shared-models.js';

t.test(
  'swarmbee up starts a loopback cluster, prints the plan, generates, and exits with --no-serve',
  async (t) => {
    const result = await runCli(
      ['up', '--workers', '2', '--api', '127.0.0.1:0', '--steps', '40', '--no-serve'],
      {
        env: { SWARMBEE_CACHE_DIR: t.testdir() },
        timeoutMs: 120_000,
      },
    );
    t.equal(result.code, 0, result.stderr.slice(-2000));
    t.match(result.stdout, /Plan for synthetic-tiny-seed42 over 2 worker\(s\)/);
    t.match(result.stdout, /│ 0\s+│ worker-0 │ \[0, 3\)/, 'stage 0 runs layers 0..2 on worker-0');
    t.match(result.stdout, /│ 1\s+│ worker-1 │ \[3, 5\)/);
    t.match(result.stdout, /^Once upon a time/m, 'the demo prints its prompt and continuation');
    t.match(result.stdout, /\d+ tokens; first token after \d+ ms, then [\d.]+ tokens\/s/);
    t.match(result.stdout, /API: http:\/\/127\.0\.0\.1:\d+\/v1/);
    t.match(result.stderr, /random weights/, 'the embedded default says its weights are random');
  },
);

t.test('npm ci builds everything the quick start runs (prepare runs npm run build)', async (t) => {
  // The quick start is `npm ci && npx swarmbee up`: bin/swarmbee.js runs the CLI bundle that
  // `npm run build` makes, and npm ci builds only through the prepare script.
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
  t.match(pkg.scripts.prepare, /^npm run build(\s|$)/, 'prepare runs the whole build');
  t.match(pkg.scripts.build, /packages\/cli\/scripts\/bundle\.mjs/, 'the build makes the bundle');
  const bin = await readFile(join(REPO_ROOT, 'packages/cli/bin/swarmbee.js'), 'utf8');
  t.match(bin, /'\.\.\/dist\/bundle\/index\.js'/, 'the bin runs that bundle');
});
