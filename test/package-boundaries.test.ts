/**
 * The package boundaries (scripts/check-package-boundaries.ts, run by `npm run lint`): the
 * repository keeps them; the check catches each way of breaking them; Node itself refuses a
 * path a package does not export; and the CLI's `up` and `optimize` load no benchmark code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  type BoundaryFinding,
  findBoundaryViolations,
  packagesReachedFrom,
  REPO_ROOT,
  workspacePackages,
} from '../scripts/check-package-boundaries.js';

const format = (findings: BoundaryFinding[]) =>
  findings.map((f) => `${f.file}:${f.line}: ${f.rule}: ${f.message}`).join('\n');

t.test('the workspace keeps its package boundaries', async (t) => {
  const findings = findBoundaryViolations();
  t.same(findings, [], format(findings));
});

/** A two-package workspace: `@x/low` (entry points `.` and `./extra`) under `@x/high`. */
function workspace(root: string, files: Record<string, string>, highDeps = ['@x/low']): void {
  const write = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  write(
    'package.json',
    JSON.stringify({ name: 'w', workspaces: ['packages/low', 'packages/high'] }),
  );
  const entry = (file: string) => ({ 'swarmbee:source': file, default: file });
  write(
    'packages/low/package.json',
    JSON.stringify({
      name: '@x/low',
      exports: { '.': entry('./src/index.ts'), './extra': entry('./src/extra.ts') },
      dependencies: highDeps.includes('@x/high') ? { '@x/high': '1' } : {},
    }),
  );
  write(
    'packages/high/package.json',
    JSON.stringify({
      name: '@x/high',
      exports: { '.': entry('./src/index.ts') },
      dependencies: Object.fromEntries(
        highDeps.filter((d) => d !== '@x/high').map((d) => [d, '1']),
      ),
    }),
  );
  write('packages/low/src/index.ts', "export { a } from './a.js';\n");
  write('packages/low/src/a.ts', 'export const a = 1;\n');
  write('packages/low/src/extra.ts', 'export const extra = 2;\n');
  write('packages/high/src/index.ts', "export { a } from '@x/low';\n");
  for (const [path, text] of Object.entries(files)) write(path, text);
}

t.test('BAD INPUT - each broken boundary is found, with its file and line', async (t) => {
  const check = (files: Record<string, string>, highDeps?: string[]) => {
    const root = t.testdir();
    workspace(root, files, highDeps);
    return findBoundaryViolations(root).map((f) => `${f.rule} ${f.file}:${f.line}`);
  };
  t.same(check({}), [], 'the clean workspace passes');
  t.same(
    check({
      'packages/high/src/extra.ts': "import { extra } from '@x/low/extra';\nexport { extra };\n",
    }),
    [],
    'a declared entry point is fine',
  );
  t.same(
    check({ 'packages/low/src/index.ts': "export * from './a.js';\n" }),
    ['export-star packages/low/src/index.ts:1'],
    'export * in an index',
  );
  t.same(
    check({
      'packages/high/src/deep.ts': "\nimport { a } from '@x/low/src/a.js';\nexport { a };\n",
    }),
    ['deep-import packages/high/src/deep.ts:2'],
    'a path the exports map does not declare',
  );
  t.same(
    check({ 'packages/high/test/x.test.ts': "import { a } from '../../low/src/a.js';\nvoid a;\n" }),
    ['relative-import packages/high/test/x.test.ts:1'],
    "a relative path into another package's src/, from a test too",
  );
  t.same(
    check({ 'packages/high/src/y.ts': "export const y = () => import('left-pad');\n" }),
    ['undeclared-dependency packages/high/src/y.ts:1'],
    'an npm package not in dependencies',
  );
  t.same(
    check({ 'packages/high/src/index.ts': 'export const b = 2;\n' }),
    ['unused-dependency packages/high/package.json:1'],
    'a workspace dependency nothing imports',
  );
  t.same(
    check({ 'packages/low/src/up.ts': "export { a } from '@x/high';\n" }, ['@x/low', '@x/high']),
    ['cycle package.json:1'],
    'packages depending on each other',
  );
});

t.test("Node refuses what a package's exports map does not declare", async (t) => {
  for (const internal of [
    '@swarmbee/engine/src/kv-cache.ts',
    '@swarmbee/engine/src/batch-feeds.ts',
    '@swarmbee/coordinator/src/cluster/worker-link.ts',
    '@swarmbee/bench/src/local-cluster.ts',
  ]) {
    await t.rejects(import(internal), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }, internal);
  }
  const engine = await import('@swarmbee/engine');
  for (const name of ['KvCache', 'attentionBias', 'positionIds', 'OrtStage', 'startThread'])
    t.notOk(name in engine, `@swarmbee/engine does not export ${name}`);
  const threads = await import('@swarmbee/engine/source-thread');
  t.type(threads.startThread, 'function', 'worker threads from source: a declared entry point');
  const coordinator = await import('@swarmbee/coordinator');
  for (const name of ['WorkerLink', 'sendShard', 'ShardStore', 'profileCluster'])
    t.notOk(name in coordinator, `@swarmbee/coordinator does not export ${name}`);
});

t.test('swarmbee up and swarmbee optimize load no benchmark code', async (t) => {
  const packages = workspacePackages();
  const commands = join(REPO_ROOT, 'packages', 'cli', 'src', 'commands');
  for (const command of ['up.ts', 'optimize.ts', 'optimize-search.ts']) {
    const reached = packagesReachedFrom(join(commands, command), packages);
    t.notOk(reached.has('@swarmbee/bench'), `${command} reaches ${[...reached].join(', ')}`);
  }
  t.ok(
    packagesReachedFrom(join(commands, 'up.ts'), packages).has('@swarmbee/local-cluster'),
    'up runs a LocalCluster',
  );
  t.ok(
    packagesReachedFrom(join(commands, 'optimize.ts'), packages).has('@swarmbee/optimize'),
    'optimize runs @swarmbee/optimize',
  );
  // The packages these commands need do not depend on the benchmarks either.
  const closure = (name: string, seen = new Set<string>()): Set<string> => {
    for (const d of packages.get(name)?.dependencies ?? [])
      if (packages.has(d) && !seen.has(d)) closure(d, seen.add(d));
    return seen;
  };
  for (const name of ['@swarmbee/optimize', '@swarmbee/local-cluster'])
    t.notOk(closure(name).has('@swarmbee/bench'), `${name} depends on ${[...closure(name)]}`);
  t.notOk(
    packages.get('@swarmbee/coordinator')!.dependencies.has('onnxruntime-node'),
    'the coordinator does not load onnxruntime',
  );
});
