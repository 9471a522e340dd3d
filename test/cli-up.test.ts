/** The quick start's main job: `swarmbee up` on the embedded default model. */
import t from 'tap';
import { runCli } from './helpers/cli.js';

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
