/**
 * deploy/docker/Dockerfile: lints clean (dockerfile-utils; hadolint too when it is
 * installed), builds its JavaScript once on the build platform and installs the
 * runtime dependencies per target platform, runs every `npm ci` without install scripts, and
 * copies only what the build context (after .dockerignore) really holds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { WORKER_NODE_FLAGS } from '@swarmbee/worker';
import { validate } from 'dockerfile-utils';
import t from 'tap';
import { readRepoFile, repoPath } from './helpers/deploy.js';

const TEXT = readRepoFile('deploy', 'docker', 'Dockerfile');

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions per stage; comments dropped, `\` continuations joined. */
function stages(text: string): Instruction[][] {
  const out: Instruction[][] = [];
  const lines = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n');
  for (const line of lines) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = { keyword: match[1]!, args: match[2]!.replace(/\s+/g, ' ').trim() };
    if (instruction.keyword === 'FROM') out.push([]);
    out.at(-1)?.push(instruction);
  }
  return out;
}

/** Whether .dockerignore keeps `path` out of the build context (no `!` exceptions used). */
function ignored(path: string): boolean {
  const patterns = readRepoFile('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (patterns.some((p) => p.startsWith('!'))) throw new Error('teach ignored() about ! patterns');
  return patterns.some((pattern) => {
    const body = pattern
      .replace(/\/$/, '')
      .split('**')
      .map((part) =>
        part
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]'),
      )
      .join('.*');
    const regex = new RegExp(`^${body}(/.*)?$`);
    return regex.test(path);
  });
}

t.test('the Dockerfile lints clean', async (t) => {
  const problems = validate(TEXT).map(
    (d) => `line ${d.range.start.line + 1}: ${d.message} (severity ${d.severity})`,
  );
  t.same(problems, [], 'dockerfile-utils finds nothing, warnings included');
  const hadolint = spawnSync('hadolint', ['--version'], { stdio: 'ignore' });
  if (hadolint.error) {
    t.comment(
      'hadolint is not installed (a static binary outside Debian and npm): only dockerfile-utils linted the Dockerfile',
    );
    return;
  }
  const result = spawnSync('hadolint', [repoPath('deploy', 'docker', 'Dockerfile')], {
    encoding: 'utf8',
  });
  t.equal(result.status, 0, result.stdout + result.stderr);
});

t.test(
  'one multi-arch image: JavaScript built once, dependencies installed per platform',
  async (t) => {
    const all = stages(TEXT);
    const final = all.at(-1)!;
    t.match(
      TEXT,
      /^ARG NODE_IMAGE=node:20-bookworm-slim$/m,
      'a base published for amd64 and arm64',
    );
    t.ok(
      all.every((stage) => /\$\{NODE_IMAGE\}( AS \w+)?$/.test(stage[0]!.args)),
      'every stage starts from it',
    );
    for (const stage of all.slice(0, -1))
      t.match(
        stage[0]!.args,
        /^--platform=\$BUILDPLATFORM /,
        `${stage[0]!.args}: runs natively, no emulation`,
      );
    t.notMatch(final[0]!.args, /--platform/, 'the final stage is the target platform');
    const runs = (stage: Instruction[]) =>
      stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    t.ok(
      runs(final).some((r) => /npm ci --omit=dev --ignore-scripts/.test(r)),
      'production dependencies for the target',
    );
    t.notOk(
      runs(final).some((r) => /npm run build|tsc/.test(r)),
      'nothing is compiled on the target platform',
    );
    t.ok(
      all.some((stage) => runs(stage).some((r) => /npm run build/.test(r))),
      'a build stage compiles',
    );

    for (const stage of all) {
      for (const run of runs(stage).filter((r) => /\bnpm ci\b/.test(r)))
        t.match(
          run,
          /--ignore-scripts/,
          `${stage[0]!.args}: npm ci runs no install scripts (no CUDA download)`,
        );
    }

    t.ok(
      final.some(
        (i) =>
          i.keyword === 'ENV' && i.args.includes(`NODE_OPTIONS=${WORKER_NODE_FLAGS.join(' ')}`),
      ),
      'node runs with the flags that keep RSS flat (see the soak benchmark)',
    );
    const entrypoint = final.find((i) => i.keyword === 'ENTRYPOINT')!;
    const [node, script] = JSON.parse(entrypoint.args) as string[];
    t.equal(node, 'node');
    t.ok(
      script?.startsWith('/app/') && existsSync(repoPath(script.slice('/app/'.length))),
      `${script} is the CLI`,
    );
    t.ok(final.some((i) => i.keyword === 'WORKDIR' && i.args === '/app'));
    t.ok(
      final.some((i) => i.keyword === 'USER' && i.args === 'node'),
      'runs as the unprivileged node user',
    );
    t.match(
      final.find((i) => i.keyword === 'ENV')?.args,
      /SWARMBEE_CACHE_DIR=\/var\/cache\/swarmbee/,
      'the cache the compose volumes mount',
    );
    const exposed = final
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(' '))
      .map(Number)
      .sort();
    t.same(exposed, [7070, 7071, 8080], 'the API, worker and data ports docker-compose.yml uses');
  },
);

t.test('what the Dockerfile copies is in the build context', async (t) => {
  for (const stage of stages(TEXT)) {
    for (const copy of stage.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(' ').slice(0, -1);
      for (const source of sources) {
        t.ok(existsSync(repoPath(source)), `${source} exists`);
        t.notOk(ignored(source), `${source} is not in .dockerignore`);
      }
    }
  }
  for (const path of [
    'packages/cli/src/main.ts',
    'packages/cli/bin/swarmbee.js',
    'packages/core/package.json',
  ])
    t.notOk(ignored(path), `${path} reaches the build`);
  for (const path of [
    'node_modules',
    'packages/cli/node_modules',
    'packages/cli/dist',
    'deploy/docker/swarmbee.env',
    '.git',
  ])
    t.ok(ignored(path), `${path} stays out of the build context`);
});
