/**
 * docker-compose.yml: a coordinator and three workers whose command lines the CLI
 * accepts, wired to each other by service name on matching ports, with health
 * checks, a cache volume per worker, the model read-only, and the token from an
 * env file. There is no Docker engine here, so the last test runs the same command
 * lines and health checks as processes on loopback.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { importStories260k } from './helpers/cli.js';
import {
  checkCommandLine,
  flag,
  hostOf,
  type ParsedCommandLine,
  portOf,
} from './helpers/cli-spec.js';
import { complete, type ProcessHandle, startProcess, waitReady } from './helpers/cluster.js';
import {
  parseEnvFile,
  readRepoFile,
  readYamlDocuments,
  repoPath,
  swarmbeeEnvVars,
} from './helpers/deploy.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

interface Mount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  env_file?: string | string[];
  environment?: Record<string, string> | string[];
  healthcheck?: { test: string[]; start_period?: string };
  volumes?: (string | { type: string; source: string; target: string; read_only?: boolean })[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}

const compose = readYamlDocuments('docker-compose.yml')[0] as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};

function mounts(service: Service): Mount[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string')
      return {
        type: volume.type === 'bind' ? 'bind' : 'volume',
        source: volume.source,
        target: volume.target,
        readOnly: volume.read_only === true,
      };
    const [source, target, mode] = volume.split(':');
    return {
      type: /^[./~$]/.test(source!) ? 'bind' : 'volume',
      source: source!,
      target: target!,
      readOnly: mode === 'ro',
    };
  });
}

function mountOf(service: Service, path: string): Mount | undefined {
  return mounts(service).find((m) => path === m.target || path.startsWith(`${m.target}/`));
}

interface Role {
  name: string;
  service: Service;
  parsed: ParsedCommandLine;
  problems: string[];
}

async function roles(): Promise<{ coordinators: Role[]; workers: Role[]; all: Role[] }> {
  const all: Role[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    const { parsed, problems } = await checkCommandLine(service.command ?? []);
    all.push({ name, service, parsed, problems });
  }
  return {
    coordinators: all.filter((r) => r.parsed.command[0] === 'coordinator'),
    workers: all.filter((r) => r.parsed.command[0] === 'worker'),
    all,
  };
}

/** The argv after `node /app/deploy/healthcheck.mjs` in a CMD health check. */
function healthcheckArgs(service: Service): string[] {
  const test = service.healthcheck?.test ?? [];
  if (test[0] !== 'CMD' || test[1] !== 'node' || test[2] !== '/app/deploy/healthcheck.mjs')
    throw new Error(`unexpected health check ${JSON.stringify(test)}`);
  return test.slice(3);
}

t.test(
  'docker-compose.yml runs a coordinator and three workers, as `swarmbee up --workers 3`',
  async (t) => {
    const { coordinators, workers, all } = await roles();
    for (const role of all)
      t.same(role.problems, [], `${role.name}: swarmbee ${role.service.command?.join(' ')}`);
    t.equal(coordinators.length, 1, 'one coordinator');
    t.equal(workers.length, 3, 'three workers');
    t.equal(
      Number(flag(coordinators[0]!.parsed, 'min-workers')),
      workers.length,
      '--min-workers waits for all three',
    );
    const names = workers.map((w) => flag(w.parsed, 'name'));
    t.equal(new Set(names).size, workers.length, `worker names are unique: ${names.join(', ')}`);
    for (const role of all) {
      t.equal(
        role.service.build?.dockerfile,
        'deploy/docker/Dockerfile',
        `${role.name} runs the SwarmBee image`,
      );
      t.ok(existsSync(repoPath(role.service.build!.context, role.service.build!.dockerfile)));
    }
    const dockerfile = readRepoFile('deploy', 'docker', 'Dockerfile');
    t.match(
      dockerfile,
      /^ENTRYPOINT \["node", "\/app\/packages\/cli\/bin\/swarmbee\.js"\]$/m,
      "the image's entry point is swarmbee, so `command:` is swarmbee's argv",
    );
  },
);

t.test(
  'workers reach the coordinator and each other by service name, on matching ports',
  async (t) => {
    const { coordinators, workers } = await roles();
    const coordinator = coordinators[0]!;
    const workerPort = portOf(flag(coordinator.parsed, 'listen')!);
    t.match(
      flag(coordinator.parsed, 'listen'),
      /^0\.0\.0\.0:/,
      'the coordinator listens beyond its container',
    );
    for (const worker of workers) {
      const join = flag(worker.parsed, 'join')!;
      t.equal(
        hostOf(join),
        coordinator.name,
        `${worker.name} joins the coordinator service by name`,
      );
      t.equal(portOf(join), workerPort, `${worker.name} joins its --listen port ${workerPort}`);
      t.equal(
        flag(worker.parsed, 'advertise'),
        worker.name,
        `${worker.name} advertises its service name`,
      );
      t.match(
        flag(worker.parsed, 'listen'),
        /^0\.0\.0\.0:\d+$/,
        'and listens beyond its container',
      );
      t.same(
        worker.service.depends_on,
        { [coordinator.name]: { condition: 'service_started' } },
        'workers wait for the coordinator to start, not to be healthy: it is healthy only once they joined',
      );
    }
  },
);

t.test('health checks: /healthz on the coordinator, the data port on each worker', async (t) => {
  const { coordinators, workers } = await roles();
  t.ok(existsSync(repoPath('deploy', 'healthcheck.mjs')), 'deploy/healthcheck.mjs exists');
  t.match(
    readRepoFile('deploy', 'docker', 'Dockerfile'),
    /^COPY deploy\/healthcheck\.mjs \.\/deploy\/healthcheck\.mjs$/m,
    'and the image has it at /app/deploy/healthcheck.mjs (WORKDIR /app)',
  );
  const coordinator = coordinators[0]!;
  const api = portOf(flag(coordinator.parsed, 'api')!);
  t.same(healthcheckArgs(coordinator.service), [`http://127.0.0.1:${api}/healthz`]);
  t.ok(coordinator.service.healthcheck?.start_period, 'with time to deploy before failures count');
  for (const worker of workers) {
    const port = portOf(flag(worker.parsed, 'listen')!);
    t.same(
      healthcheckArgs(worker.service),
      ['--status', '426', '--body', 'SwarmBee', `http://127.0.0.1:${port}/`],
      `${worker.name}: its data port answers from the worker's event loop`,
    );
  }
  t.same(
    coordinator.service.ports,
    [`127.0.0.1:${api}:${api}`],
    'the API is published, on loopback by default',
  );
});

t.test('a named volume per worker for its shard cache; the model mounted read-only', async (t) => {
  const { coordinators, workers } = await roles();
  const declared = Object.keys(compose.volumes ?? {});
  const used = new Set<string>();
  for (const worker of workers) {
    const cacheDir = flag(worker.parsed, 'cache-dir')!;
    const mount = mountOf(worker.service, cacheDir);
    t.equal(mount?.type, 'volume', `${worker.name}: --cache-dir ${cacheDir} is on a named volume`);
    t.ok(declared.includes(mount!.source), `${mount!.source} is declared under volumes:`);
    t.notOk(used.has(mount!.source), 'and no other worker shares it');
    used.add(mount!.source);
  }
  const coordinator = coordinators[0]!;
  const model = mountOf(coordinator.service, flag(coordinator.parsed, 'model')!);
  t.equal(model?.type, 'bind', 'the model dir comes from the host');
  t.equal(model?.readOnly, true, 'read-only');
  t.match(
    model?.source,
    /^\$\{SWARMBEE_MODEL_DIR:-[^}]+\}$/,
    'SWARMBEE_MODEL_DIR picks it, with a default',
  );
  t.equal(
    mountOf(coordinator.service, flag(coordinator.parsed, 'cache-dir')!)?.type,
    'volume',
    "the coordinator's built shards are on a volume",
  );
  for (const interpolation of readRepoFile('docker-compose.yml').matchAll(/\$\{([^}]+)\}/g))
    t.match(interpolation[1], /^[A-Z_]+:-./, `\${${interpolation[1]}} has a default`);
});

t.test('the token comes from an env file; the committed example holds no secret', async (t) => {
  const { all } = await roles();
  for (const role of all) {
    t.same(
      [role.service.env_file].flat(),
      ['deploy/docker/swarmbee.env'],
      `${role.name} reads the env file`,
    );
    t.notOk(role.parsed.flags.has('token'), 'no token on the command line');
    t.notOk(role.service.environment, 'and none inline');
  }
  const example = parseEnvFile(readRepoFile('deploy', 'docker', 'swarmbee.env.example'));
  const known = swarmbeeEnvVars();
  for (const name of example.keys()) t.ok(known.has(name), `swarmbee reads ${name}`);
  t.equal(
    example.get('SWARMBEE_TOKEN'),
    '',
    'the example token is empty: swarmbee refuses to start with it',
  );
  t.match(
    readRepoFile('deploy', 'docker', '.gitignore'),
    /^swarmbee\.env$/m,
    'the real env file is git-ignored',
  );
  t.match(
    readRepoFile('.dockerignore'),
    /^deploy\/docker\/swarmbee\.env$/m,
    'and kept out of image builds',
  );
});

const execFileAsync = promisify(execFile);

/** Runs a compose health check against this machine's processes; resolves to its exit code. */
async function healthcheck(args: string[], url: string): Promise<{ code: number; stderr: string }> {
  const argv = [repoPath('deploy', 'healthcheck.mjs'), ...args.slice(0, -1), url];
  try {
    await execFileAsync(process.execPath, argv, { timeout: 10_000 });
    return { code: 0, stderr: '' };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

/** `argv` with the values of some flags replaced. */
function replaceFlags(t: Test, argv: string[], values: Record<string, string>): string[] {
  const out = [...argv];
  for (const [name, value] of Object.entries(values)) {
    const at = out.indexOf(`--${name}`);
    t.ok(at !== -1, `the compose command line has --${name}`);
    out[at + 1] = value;
  }
  return out;
}

t.test('the compose command lines and health checks work together (run on loopback)', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const env = Object.fromEntries(
    parseEnvFile(readRepoFile('deploy', 'docker', 'swarmbee.env.example')),
  );
  env.SWARMBEE_TOKEN = randomBytes(24).toString('hex');

  // Stopped in `finally` rather than in teardown, which tap runs after removing the test dir.
  const processes: ProcessHandle[] = [];
  try {
    await runComposeOnLoopback(t, root, model, env, processes);
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
});

async function runComposeOnLoopback(
  t: Test,
  root: string,
  model: string,
  env: Record<string, string>,
  processes: ProcessHandle[],
): Promise<void> {
  const { coordinators, workers } = await roles();
  // Docker's addresses become loopback ones; paths inside containers, this test's.
  const coordinator = coordinators[0]!;
  const coordinatorProcess = startProcess(
    replaceFlags(t, coordinator.service.command!, {
      model,
      listen: '127.0.0.1:0',
      api: '127.0.0.1:0',
      'cache-dir': join(root, 'coordinator-cache'),
    }),
    env,
  );
  processes.push(coordinatorProcess);
  const [, workersUrl, apiUrl] = await coordinatorProcess.waitFor(
    /listening for workers on (\S+); API on (\S+)/,
  );
  const coordinatorCheck = healthcheckArgs(coordinator.service);
  const waiting = await healthcheck(coordinatorCheck, `${apiUrl}/healthz`);
  t.equal(waiting.code, 1, 'the coordinator is not healthy while it waits for workers');
  t.match(waiting.stderr, /answered 503/);

  const dataUrls: string[] = [];
  for (const worker of workers) {
    const handle = startProcess(
      replaceFlags(t, worker.service.command!, {
        join: workersUrl!,
        listen: '127.0.0.1:0',
        advertise: '127.0.0.1',
        'cache-dir': join(root, `${worker.name}-cache`),
      }),
      env,
    );
    processes.push(handle);
    dataUrls.push((await handle.waitFor(/serving stage traffic on (\S+)/))[1]!);
  }
  // Four processes start and profile the devices and links with the compose defaults (no
  // shortened profiling): ~40 s on an idle 2-core machine, far longer when it is busy.
  await waitReady(apiUrl!, 180_000);
  t.equal(
    (await healthcheck(coordinatorCheck, `${apiUrl}/healthz`)).code,
    0,
    'healthy once deployed',
  );
  for (const [i, worker] of workers.entries()) {
    const url = dataUrls[i]!.replace(/^ws:/, 'http:');
    t.equal(
      (await healthcheck(healthcheckArgs(worker.service), `${url}/`)).code,
      0,
      `${worker.name} is healthy`,
    );
  }

  const once = await complete(apiUrl!, {
    prompt: 'Once upon a time',
    steps: 64,
    temperature: 0,
    echo: true,
  });
  t.equal(
    `${once.json.choices[0].text}\n`,
    readFileSync(STORIES260K.refOnceUponATime, 'utf8'),
    "three compose workers give run.c's text",
  );

  await processes[1]!.stop();
  const stopped = await healthcheck(
    healthcheckArgs(workers[0]!.service),
    `${dataUrls[0]!.replace(/^ws:/, 'http:')}/`,
  );
  t.equal(stopped.code, 1, 'a stopped worker is unhealthy');
}
