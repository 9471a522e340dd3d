/**
 * deploy/systemd: the worker and coordinator units run `swarmbee` command lines the
 * CLI accepts, take every variable from their env files, keep the token off the
 * command line, write only to their cache, and pass systemd's own checks.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORKER_NODE_FLAGS } from '@swarmbee/worker';
import t from 'tap';
import { checkCommandLine, flag, portOf } from './helpers/cli-spec.js';
import {
  haveTool,
  NODE_ENV_VARS,
  parseEnvFile,
  readRepoFile,
  repoPath,
  swarmbeeEnvVars,
} from './helpers/deploy.js';
import { expandExecStart, parseUnit, setting } from './helpers/systemd-unit.js';

const UNITS = [
  { role: 'worker', unit: 'swarmbee-worker.service', env: 'worker.env.example' },
  { role: 'coordinator', unit: 'swarmbee-coordinator.service', env: 'coordinator.env.example' },
] as const;

const INSTALL_ROOT = '/opt/swarmbee/current/';

function load(role: (typeof UNITS)[number]) {
  const unit = parseUnit(readRepoFile('deploy', 'systemd', role.unit));
  const envFile = parseEnvFile(readRepoFile('deploy', 'systemd', role.env));
  const env = new Map(envFile);
  for (const assignment of setting(unit, 'Service', 'Environment'))
    for (const pair of assignment.split(/\s+/)) {
      const at = pair.indexOf('=');
      env.set(pair.slice(0, at), pair.slice(at + 1));
    }
  const [execStart] = setting(unit, 'Service', 'ExecStart');
  return { unit, envFile, env, execStart: execStart ?? '' };
}

for (const role of UNITS) {
  t.test(`${role.unit} runs a swarmbee ${role.role} command line the CLI accepts`, async (t) => {
    const { unit, envFile, env, execStart } = load(role);
    const { argv, used, missing } = expandExecStart(execStart, env);
    t.same(missing, [], 'every variable ExecStart= uses is set in the env file or Environment=');
    const [node, script, ...args] = argv;
    t.equal(node, '/usr/bin/node', 'node at the path install-worker.sh replaces with the real one');
    t.ok(script?.startsWith(INSTALL_ROOT), `the CLI from the installed release: ${script}`);
    t.ok(
      existsSync(repoPath(script!.slice(INSTALL_ROOT.length))),
      `${script} is a file of the release (packages/cli/bin/swarmbee.js)`,
    );
    const { parsed, problems } = await checkCommandLine(args);
    t.same(problems, [], `swarmbee ${args.join(' ')}`);
    t.same(parsed.command, [role.role]);
    t.notOk(
      parsed.flags.has('token') || parsed.flags.has('token-file'),
      'the token is not on the command line (ps would show it): SWARMBEE_TOKEN comes from the env file',
    );

    const known = swarmbeeEnvVars();
    t.ok(envFile.has('SWARMBEE_TOKEN'), 'the env file holds SWARMBEE_TOKEN');
    t.equal(envFile.get('SWARMBEE_TOKEN'), '', 'and the example leaves it empty: no shared secret');
    for (const name of envFile.keys()) {
      if (name.startsWith('SWARMBEE_')) t.ok(known.has(name), `swarmbee reads ${name}`);
      else t.ok(used.includes(name), `${name} fills in ExecStart= (no dead settings)`);
    }
    for (const assignment of setting(unit, 'Service', 'Environment'))
      for (const name of assignment.split(/\s+/).map((pair) => pair.split('=')[0]!))
        t.ok(known.has(name) || NODE_ENV_VARS.has(name), `Environment=${name} is read by someone`);

    const cacheDir = flag(parsed, 'cache-dir')!;
    const [cacheDirectory] = setting(unit, 'Service', 'CacheDirectory');
    t.ok(
      cacheDir.startsWith(`/var/cache/${cacheDirectory}/`),
      `--cache-dir ${cacheDir} is in CacheDirectory=`,
    );
    t.ok(
      setting(unit, 'Service', 'ReadWritePaths').some((p) => cacheDir.startsWith(`${p}/`)),
      'and writable under ProtectSystem=strict',
    );
    t.equal(env.get('SWARMBEE_CACHE_DIR'), `/var/cache/${cacheDirectory}`);
    t.equal(
      env.get('NODE_OPTIONS'),
      WORKER_NODE_FLAGS.join(' '),
      'node runs with the flags that keep RSS flat (see the soak benchmark)',
    );
  });

  t.test(`${role.unit} restarts on failure and is hardened as far as Node allows`, async (t) => {
    const { unit } = load(role);
    const one = (key: string) => setting(unit, 'Service', key).at(-1);
    t.equal(one('User'), 'swarmbee', 'a dedicated user');
    t.equal(one('EnvironmentFile'), `/etc/swarmbee/${role.role}.env`, 'a required env file');
    t.equal(one('Restart'), 'on-failure');
    t.ok(one('RestartSec'), 'with a pause between restarts');
    t.equal(one('RestartPreventExitStatus'), '2', 'but not after a usage error (exit 2)');
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'],
      ['ProtectControlGroups', 'yes'],
      ['RestrictSUIDSGID', 'yes'],
      ['CapabilityBoundingSet', ''],
    ])
      t.equal(one(key!), value, `${key}=${value}`);
    t.notOk(one('MemoryDenyWriteExecute'), "no MemoryDenyWriteExecute=: V8's JIT needs it");
    t.not(one('ProcSubset'), 'pid', 'no ProcSubset=pid: Node and onnxruntime read /proc/cpuinfo');
    t.same(setting(unit, 'Install', 'WantedBy'), ['multi-user.target']);
  });
}

t.test('the worker env file points at the coordinator env file ports', async (t) => {
  const worker = parseEnvFile(readRepoFile('deploy', 'systemd', 'worker.env.example'));
  const coordinator = parseEnvFile(readRepoFile('deploy', 'systemd', 'coordinator.env.example'));
  t.equal(
    portOf(worker.get('COORDINATOR_URL')!),
    portOf(coordinator.get('LISTEN_ADDRESS')!),
    "workers join the coordinator's worker port",
  );
  t.match(coordinator.get('MODEL_DIR'), /^\/(?!home\/|root\/)/, 'the model dir is outside /home');
});

t.test('the GPU drop-in opens the devices the default unit hides, and nothing else', async (t) => {
  const dropIn = parseUnit(
    readRepoFile('deploy', 'systemd', 'swarmbee-worker.service.d', 'gpu.conf'),
  );
  t.same([...(dropIn.get('Service')?.keys() ?? [])].sort(), [
    'PrivateDevices',
    'SupplementaryGroups',
  ]);
  t.same(setting(dropIn, 'Service', 'PrivateDevices'), ['no']);
  t.same(setting(dropIn, 'Service', 'SupplementaryGroups'), ['video']);
});

/** The units (and the drop-in) in a temporary dir, with this machine's node in ExecStart=. */
function stagedUnits(): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarmbee-units-'));
  cpSync(repoPath('deploy', 'systemd'), dir, { recursive: true });
  for (const { unit } of UNITS) {
    const path = join(dir, unit);
    writeFileSync(path, readFileSync(path, 'utf8').replaceAll('/usr/bin/node', process.execPath));
  }
  return dir;
}

t.test('systemd-analyze verify accepts both units and the GPU drop-in', async (t) => {
  if (!haveTool(t, 'systemd-analyze', 'systemd')) return;
  const dir = stagedUnits();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = spawnSync(
    'systemd-analyze',
    ['verify', '--man=no', ...UNITS.map(({ unit }) => join(dir, unit))],
    { encoding: 'utf8' },
  );
  // verify exits 0 even for unknown keys and values it cannot parse: it only prints them.
  const ours = `${result.stdout}${result.stderr}`
    .split('\n')
    .filter((line) => line.includes('swarmbee'));
  t.equal(result.status, 0, result.stderr);
  t.same(ours, [], 'no complaint about our units or drop-in');
});

t.test('systemd-analyze security rates both units OK (exposure at most 2.5 of 10)', async (t) => {
  if (!haveTool(t, 'systemd-analyze', 'systemd')) return;
  const dir = stagedUnits();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const { unit } of UNITS) {
    const result = spawnSync(
      'systemd-analyze',
      ['security', '--offline=true', '--threshold=25', '--no-pager', join(dir, unit)],
      { encoding: 'utf8' },
    );
    const overall = /Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout)?.[1];
    t.equal(result.status, 0, `${unit}: exposure ${overall ?? '?'}\n${result.stderr}`);
  }
});
