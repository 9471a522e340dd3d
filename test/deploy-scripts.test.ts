/**
 * scripts/: shellcheck passes; install-worker.sh refuses hosts onnxruntime-node
 * cannot serve (32-bit ARM, old Node, a 32-bit Node on a 64-bit kernel) with a
 * clear message and renders a unit and env file that fit together; a release
 * tarball installs with `npm ci --omit=dev` and runs.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { checkCommandLine } from './helpers/cli-spec.js';
import { haveTool, parseEnvFile, repoPath } from './helpers/deploy.js';
import { expandExecStart, parseUnit, setting } from './helpers/systemd-unit.js';

const INSTALL = repoPath('scripts', 'install-worker.sh');
const PACK = repoPath('scripts', 'pack-release.sh');

t.test('shellcheck passes on every script (and .ci/run)', async (t) => {
  if (!haveTool(t, 'shellcheck', 'shellcheck')) return;
  const scripts = readdirSync(repoPath('scripts'))
    .filter((name) => name.endsWith('.sh'))
    .map((name) => repoPath('scripts', name));
  t.ok(scripts.length >= 2, `${scripts.length} scripts`);
  scripts.push(repoPath('.ci', 'run'));
  const result = spawnSync('shellcheck', ['--severity=style', ...scripts], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stdout + result.stderr);
});

interface FakeHost {
  /** `uname -m`. */
  machine: string;
  nodeVersion: string;
  /** Node's process.arch. */
  nodeArch: string;
  /** `id -u`. */
  uid?: number;
  /** The content of an env file left by an earlier install. */
  envFile?: string;
}

/**
 * Runs install-worker.sh with `uname`, `node` and `id` answering as `host` does:
 * small scripts in a temporary dir, first on PATH (outside any home directory,
 * which the script refuses for node).
 */
function runInstaller(t: Test, host: FakeHost, args: string[], env: NodeJS.ProcessEnv = {}) {
  const bin = mkdtempSync(join(tmpdir(), 'swarmbee-fake-host-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script('uname', `[ "$1" = -m ] && { echo '${host.machine}'; exit 0; }\nexec /bin/uname "$@"`);
  script(
    'node',
    `case "$2" in\n  process.versions.node) echo '${host.nodeVersion}' ;;\n  process.arch) echo '${host.nodeArch}' ;;\n  *) exit 3 ;;\nesac`,
  );
  script(
    'id',
    `[ "$1" = -u ] && [ -z "$2" ] && { echo ${host.uid ?? 0}; exit 0; }\nexec /usr/bin/id "$@"`,
  );
  // Settings go to (and are read from) a file of this test, never /etc/swarmbee.
  const envFile = join(bin, 'worker.env');
  if (host.envFile !== undefined) writeFileSync(envFile, host.envFile);
  const result = spawnSync('bash', [INSTALL, '--env-file', envFile, ...args], {
    encoding: 'utf8',
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: process.env.HOME,
      SWARMBEE_TOKEN: 'test-token',
      ...env,
    },
  });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    node: join(bin, 'node'),
    envFile,
  };
}

const PI5: FakeHost = { machine: 'aarch64', nodeVersion: '20.19.0', nodeArch: 'arm64' };
const JOIN = ['--join', 'ws://127.0.0.1:7070', '--name', 'pi-1', '--advertise', '192.0.2.21'];

t.test(
  'install-worker.sh --dry-run on a 64-bit Pi renders a unit and env file that fit',
  async (t) => {
    const run = runInstaller(t, PI5, ['--dry-run', ...JOIN]);
    t.equal(run.status, 0, run.stderr);
    t.match(run.stderr, /this host can run a worker: aarch64, Node\.js 20\.19\.0/);
    const [envText, unitText] = run.stdout.split(/(?=^# A SwarmBee stage worker)/m);
    const env = parseEnvFile(envText!);
    t.equal(env.get('SWARMBEE_TOKEN'), '<hidden>', 'the token is never printed');
    t.equal(env.get('COORDINATOR_URL'), 'ws://127.0.0.1:7070');
    t.equal(env.get('ADVERTISE_ADDRESS'), '192.0.2.21');
    t.equal(env.get('LISTEN_ADDRESS'), '0.0.0.0:7071', 'the default data port');
    t.equal(env.get('EXECUTION_PROVIDER'), 'cpu');
    const unit = parseUnit(unitText!);
    const { argv, missing } = expandExecStart(setting(unit, 'Service', 'ExecStart')[0]!, env);
    t.same(missing, [], 'the env file sets every variable of the rendered ExecStart=');
    t.equal(argv[0], run.node, "ExecStart= runs this host's node");
    t.same(
      setting(unit, 'Service', 'EnvironmentFile'),
      [run.envFile],
      'and reads the env file it wrote',
    );
    t.equal(argv[1], '/opt/swarmbee/current/packages/cli/bin/swarmbee.js');
    const { problems } = await checkCommandLine(argv.slice(2));
    t.same(problems, [], `swarmbee ${argv.slice(2).join(' ')}`);
  },
);

t.test('install-worker.sh keeps --install-dir and --extra-args in what it renders', async (t) => {
  const run = runInstaller(t, PI5, [
    '--dry-run',
    ...JOIN,
    '--install-dir',
    '/srv/swarmbee',
    '--extra-args',
    '--threads 3',
    '--execution-provider',
    'cuda',
  ]);
  t.equal(run.status, 0, run.stderr);
  const env = parseEnvFile(run.stdout);
  const unit = parseUnit(run.stdout.slice(run.stdout.indexOf('[Unit]')));
  const { argv } = expandExecStart(setting(unit, 'Service', 'ExecStart')[0]!, env);
  t.equal(argv[1], '/srv/swarmbee/current/packages/cli/bin/swarmbee.js');
  const { parsed, problems } = await checkCommandLine(argv.slice(2));
  t.same(problems, []);
  t.same(parsed.flags.get('threads'), ['3'], 'EXTRA_ARGS splits into flags');
  t.same(parsed.flags.get('execution-provider'), ['cuda']);
  t.match(run.stderr, /GPU drop-in/, 'a GPU provider brings the GPU drop-in');
});

t.test(
  'install-worker.sh run again keeps the settings and token of the first install',
  async (t) => {
    const first = [
      'SWARMBEE_TOKEN=kept-token',
      'COORDINATOR_URL=ws://laptop.local:7070',
      'WORKER_NAME=pi-7',
      'ADVERTISE_ADDRESS=pi-7.local',
      'EXTRA_ARGS=--threads 2',
    ].join('\n');
    const run = runInstaller(
      t,
      { ...PI5, envFile: first },
      ['--dry-run', '--listen', '0.0.0.0:7100'],
      {
        SWARMBEE_TOKEN: '',
      },
    );
    t.equal(run.status, 0, run.stderr);
    const env = parseEnvFile(run.stdout);
    t.equal(env.get('COORDINATOR_URL'), 'ws://laptop.local:7070');
    t.equal(env.get('WORKER_NAME'), 'pi-7');
    t.equal(env.get('ADVERTISE_ADDRESS'), 'pi-7.local');
    t.equal(env.get('EXTRA_ARGS'), '--threads 2');
    t.equal(env.get('LISTEN_ADDRESS'), '0.0.0.0:7100', 'a flag given again wins');
    t.equal(
      env.get('SWARMBEE_TOKEN'),
      '<hidden>',
      'the token found there is used (and not printed)',
    );
  },
);

const REFUSALS: {
  name: string;
  host: FakeHost;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  error: RegExp;
}[] = [
  {
    name: '32-bit ARM (armv7l): onnxruntime-node has no build for it',
    host: { machine: 'armv7l', nodeVersion: '20.19.0', nodeArch: 'arm' },
    error: /32-bit ARM system \(armv7l\)\. onnxruntime-node has no 32-bit ARM build.*64-bit OS/,
  },
  {
    name: 'a 32-bit userland on a 64-bit kernel (Pi OS 32-bit on a Pi 4 says aarch64)',
    host: { machine: 'aarch64', nodeVersion: '20.19.0', nodeArch: 'arm' },
    error: /node is a arm build: onnxruntime-node has no arm binaries/,
  },
  {
    name: 'Node 20.18: older than 20.19',
    host: { machine: 'x86_64', nodeVersion: '20.18.3', nodeArch: 'x64' },
    error: /Node\.js 20\.18\.3 is too old: SwarmBee needs 20\.19\.0 or newer/,
  },
  {
    name: 'Node 18',
    host: { machine: 'aarch64', nodeVersion: '18.20.4', nodeArch: 'arm64' },
    error: /Node\.js 18\.20\.4 is too old/,
  },
  {
    name: 'an unknown architecture',
    host: { machine: 'riscv64', nodeVersion: '22.0.0', nodeArch: 'riscv64' },
    error: /unsupported architecture riscv64/,
  },
  {
    name: 'not root without --dry-run',
    host: { ...PI5, uid: 1000 },
    args: JOIN,
    error: /run as root \(sudo\)/,
  },
  {
    name: 'the token as a flag (ps would show it)',
    host: PI5,
    args: ['--dry-run', ...JOIN, '--token', 'secret'],
    error: /--token would show the token in ps/,
  },
  {
    name: 'no coordinator URL',
    host: PI5,
    args: ['--dry-run'],
    error: /the coordinator URL is required: --join/,
  },
  {
    name: 'a coordinator URL that is not ws://',
    host: PI5,
    args: ['--dry-run', '--join', 'http://laptop:8080'],
    error: /is not ws:\/\/HOST:PORT/,
  },
  {
    name: 'no token',
    host: PI5,
    args: ['--dry-run', ...JOIN],
    env: { SWARMBEE_TOKEN: '' },
    error: /the cluster token is required: --token-file FILE or SWARMBEE_TOKEN/,
  },
  {
    name: 'a source that is not a release',
    host: PI5,
    args: ['--dry-run', ...JOIN, '--source', '/etc/hostname'],
    error: /is not a SwarmBee release tarball/,
  },
  {
    name: 'an unknown option',
    host: PI5,
    args: ['--dry-run', '--frobnicate'],
    error: /unknown option '--frobnicate'/,
  },
];

for (const refusal of REFUSALS) {
  t.test(`install-worker.sh refuses ${refusal.name}`, async (t) => {
    const run = runInstaller(t, refusal.host, refusal.args ?? ['--dry-run', ...JOIN], refusal.env);
    t.equal(run.status, 1, run.stdout);
    t.match(run.stderr, /^install-worker: error: /m);
    t.match(run.stderr, refusal.error);
    t.equal(run.stdout, '', 'and prints nothing else');
  });
}

t.test('install-worker.sh --help lists every option it parses', async (t) => {
  const run = runInstaller(t, PI5, ['--help']);
  t.equal(run.status, 0);
  const source = readFileSync(INSTALL, 'utf8');
  const parsed = [...source.matchAll(/^\s+(--[a-z-]+)\)/gm)].map((m) => m[1]!);
  t.ok(parsed.length >= 10);
  for (const option of parsed.filter((o) => o !== '--token'))
    t.match(run.stdout, new RegExp(`^\\s+${option}\\b`, 'm'), `--help documents ${option}`);
});

t.test(
  'a release tarball installs with npm ci --omit=dev and runs, and dry-runs from the tarball',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmbee-release-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const tarball = join(dir, 'swarmbee.tgz');
    const pack = spawnSync('bash', [PACK, tarball], { encoding: 'utf8' });
    t.equal(pack.status, 0, pack.stderr);
    const again = spawnSync('bash', [PACK, join(dir, 'again.tgz')], { encoding: 'utf8' });
    t.equal(again.status, 0, again.stderr);
    t.same(
      readFileSync(join(dir, 'again.tgz')),
      readFileSync(tarball),
      'packing is reproducible, so install-worker.sh tells a new release by its hash',
    );

    const dry = runInstaller(t, PI5, ['--dry-run', ...JOIN, '--source', tarball]);
    t.equal(dry.status, 0, dry.stderr);
    t.match(dry.stdout, /^ExecStart=/m, 'the unit is read from the tarball');

    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1']);
    t.equal(untar.status, 0);
    const files = readdirSync(unpacked).sort();
    for (const name of ['RELEASE', 'deploy', 'package-lock.json', 'package.json', 'packages'])
      t.ok(files.includes(name), `the release holds ${name}`);
    // As install-worker.sh does; the packages come from npm's cache when it has them.
    const install = spawnSync(
      'npm',
      ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
      { cwd: unpacked, encoding: 'utf8', timeout: 240_000 },
    );
    t.equal(install.status, 0, install.stderr);
    for (const devOnly of ['typescript', 'tap', 'yaml'])
      t.notOk(
        readdirSync(join(unpacked, 'node_modules')).includes(devOnly),
        `no dev dependency (${devOnly}) in the release's install`,
      );
    const help = spawnSync(
      process.execPath,
      [join(unpacked, 'packages', 'cli', 'bin', 'swarmbee.js'), 'worker', '--help'],
      { encoding: 'utf8' },
    );
    t.equal(help.status, 0, help.stderr);
    t.match(help.stdout, /--join/);
    const generate = spawnSync(
      process.execPath,
      [
        join(unpacked, 'packages', 'cli', 'bin', 'swarmbee.js'),
        'generate',
        '--prompt-ids',
        '1',
        '--steps',
        '8',
        '--temperature',
        '0',
        '--json',
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, SWARMBEE_CACHE_DIR: join(dir, 'cache') },
        timeout: 120_000,
      },
    );
    t.equal(generate.status, 0, generate.stderr);
    t.match(
      JSON.parse(generate.stdout.trim()) as unknown,
      { token_ids: Array },
      'the installed release runs onnxruntime: it generates',
    );
  },
);
