/**
 * Startup fails loudly and SIGTERM always ends the process, on real processes: a port
 * that cannot be bound exits 1 with one coded line before anything starts; SIGTERM and
 * SIGINT end a daemon cleanly, and within --shutdown-grace-ms when stopping hangs.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  COORDINATOR_EVENTS,
  type CoordinatorStateEvent,
  type ListeningEvent,
} from '@swarmbee/coordinator';
import { WORKER_EVENTS } from '@swarmbee/worker';
import t, { type Test } from 'tap';
import { importStories260k } from './helpers/cli.js';
import { type ProcessHandle, startCluster, startProcess } from './helpers/cluster.js';
import { haveSharedModel, REPO_ROOT, STORIES260K } from './helpers/shared-models.js';

const env = { SWARMBEE_TOKEN: 'lifecycle-test-token' };

/** A port held by another server for the test's duration. */
async function heldPort(t: Test): Promise<number> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

async function exited(
  handle: ProcessHandle,
  timeoutMs: number,
): Promise<{ code: number | null; ms: number }> {
  const started = performance.now();
  const { child } = handle;
  if (child.exitCode !== null) return { code: child.exitCode, ms: 0 };
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, ms: performance.now() - started };
}

/** Lines a process wrote, without the timestamps of daemon log lines. */
function lines(handle: ProcessHandle): string[] {
  return handle.log().trim().split('\n').filter(Boolean);
}

t.test(
  'LISTEN FAILED - a coordinator whose API port is taken exits 1 with one coded line',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const port = await heldPort(t);
    const coordinator = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        '127.0.0.1:0',
        '--api',
        `127.0.0.1:${port}`,
        '--cache-dir',
        join(root, 'c'),
      ],
      env,
    );
    const { code } = await exited(coordinator, 30_000);
    t.equal(code, 1);
    t.same(lines(coordinator).length, 1, coordinator.log());
    t.match(
      lines(coordinator)[0],
      new RegExp(
        `^swarmbee: error SWARMBEE_ERR_LISTEN_FAILED: cannot serve the API on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`,
      ),
    );
    t.notMatch(coordinator.log(), /listening for workers|\bready\b| {4}at /);

    const workersPort = await heldPort(t);
    const second = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        `127.0.0.1:${workersPort}`,
        '--api',
        '127.0.0.1:0',
        '--cache-dir',
        join(root, 'c'),
      ],
      env,
    );
    t.equal((await exited(second, 30_000)).code, 1, 'the same for the workers port');
    t.same(lines(second).length, 1, second.log());
    t.match(
      lines(second)[0],
      new RegExp(
        `^swarmbee: error SWARMBEE_ERR_LISTEN_FAILED: cannot listen on 127\\.0\\.0\\.1:${workersPort}`,
      ),
    );
  },
);

t.test(
  'LISTEN FAILED - a worker whose data port is taken, and swarmbee up whose API port is',
  async (t) => {
    const root = t.testdir();
    const port = await heldPort(t);
    const worker = startProcess(
      [
        'worker',
        '--join',
        'ws://127.0.0.1:9',
        '--listen',
        `127.0.0.1:${port}`,
        '--name',
        'w',
        '--cache-dir',
        join(root, 'w'),
      ],
      env,
    );
    t.equal((await exited(worker, 30_000)).code, 1);
    t.same(lines(worker).length, 1, worker.log());
    t.match(
      lines(worker)[0],
      /^swarmbee: error SWARMBEE_ERR_LISTEN_FAILED: cannot listen on 127\.0\.0\.1:\d+/,
    );
    t.notMatch(worker.log(), /coordinator/, 'it never tried to join');

    const up = startProcess(['up', '--api', `127.0.0.1:${port}`, '--no-serve'], {
      SWARMBEE_CACHE_DIR: join(root, 'up'),
    });
    t.equal((await exited(up, 60_000)).code, 1);
    t.match(
      up.log(),
      /^swarmbee: error SWARMBEE_ERR_LISTEN_FAILED: cannot serve the API on 127\.0\.0\.1:\d+/m,
    );
    t.notMatch(up.log(), /worker-0|joined|Plan for/, 'no worker was started');
  },
);

t.test('SIGTERM and SIGINT stop a coordinator and a worker, exit 0', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const coordinator = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        '127.0.0.1:0',
        '--api',
        '127.0.0.1:0',
        '--cache-dir',
        join(root, 'c'),
        '--log-format',
        'json',
      ],
      env,
    );
    t.teardown(() => coordinator.stop('SIGKILL'));
    const { workersUrl } = await coordinator.waitForEvent<ListeningEvent>(
      COORDINATOR_EVENTS.listening,
    );
    const worker = startProcess(
      [
        'worker',
        '--join',
        workersUrl,
        '--listen',
        '127.0.0.1:0',
        '--name',
        `w-${signal}`,
        '--cache-dir',
        join(root, `w-${signal}`),
      ],
      env,
    );
    t.teardown(() => worker.stop('SIGKILL'));
    await coordinator.waitForEvent<CoordinatorStateEvent>(COORDINATOR_EVENTS.state, {
      match: (e) => e.to === 'ready',
      timeoutMs: 60_000,
    });
    worker.child.kill(signal);
    const workerExit = await exited(worker, 20_000);
    t.equal(workerExit.code, 0, `the worker stops on ${signal} (${workerExit.ms.toFixed(0)} ms)`);
    coordinator.child.kill(signal);
    const coordinatorExit = await exited(coordinator, 20_000);
    t.equal(
      coordinatorExit.code,
      0,
      `the coordinator stops on ${signal} (${coordinatorExit.ms.toFixed(0)} ms)`,
    );
    t.match(coordinator.log(), new RegExp(`${signal}: stopping`));
  }

  // A worker still trying to reach a coordinator that is not there stops too.
  const lonely = startProcess(
    [
      'worker',
      '--join',
      'ws://127.0.0.1:9',
      '--listen',
      '127.0.0.1:0',
      '--name',
      'lonely',
      '--cache-dir',
      join(root, 'lonely'),
      '--log-format',
      'json',
    ],
    env,
  );
  await lonely.waitForEvent(WORKER_EVENTS.joinRetry);
  lonely.child.kill('SIGTERM');
  t.equal((await exited(lonely, 20_000)).code, 0, 'a worker retrying to join stops on SIGTERM');
});

t.test(
  'a worker whose log pipe closed carries on quietly, not in a loop of failed writes',
  async (t) => {
    // The "coordinator" is a TCP server that counts the worker's attempts to join and drops
    // each: every attempt is followed by one log line, which fails once the pipe is closed.
    const attempts: number[] = [];
    const arrivals = new Set<() => void>();
    const server = createServer((socket) => {
      attempts.push(performance.now());
      socket.destroy();
      for (const arrived of arrivals) arrived();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const attempt = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no join attempt ${n} in 20 s`)), 20_000);
        const arrived = () => {
          if (attempts.length < n) return;
          clearTimeout(timer);
          arrivals.delete(arrived);
          resolve();
        };
        arrivals.add(arrived);
        arrived();
      });
    const { port } = server.address() as { port: number };
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'packages/cli/bin/swarmbee.js'),
        'worker',
        '--join',
        `ws://127.0.0.1:${port}`,
        '--listen',
        '127.0.0.1:0',
        '--cache-dir',
        join(t.testdir(), 'w'),
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    await attempt(1);
    child.stderr!.destroy();
    // Attempt 2's line fails; by attempt 3 a loop would have run for a whole back-off.
    await attempt(3);
    const before = cpuSeconds(child.pid!);
    await attempt(4);
    const spent = cpuSeconds(child.pid!) - before;
    const waited = (attempts[3]! - attempts[2]!) / 1000;
    t.ok(
      spent < 0.25 * waited,
      `${spent.toFixed(2)} s of CPU in the ${waited.toFixed(1)} s between two attempts to join`,
    );
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    t.equal(code, 0, 'and it still stops on SIGTERM, exit 0');
  },
);

/** User and system CPU time a process has used, s (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

t.test('a stop that hangs ends within --shutdown-grace-ms; a second signal at once', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const graceMs = 1500;
  const cluster = await startCluster({
    model,
    workers: 1,
    root,
    coordinatorArgs: ['--shutdown-grace-ms', String(graceMs)],
  });
  t.teardown(async () => {
    cluster.workers[0]!.child.kill('SIGCONT');
    await cluster.stop();
  });
  // A frozen worker never answers the closing handshake the coordinator waits for.
  cluster.workers[0]!.child.kill('SIGSTOP');
  cluster.coordinator.child.kill('SIGTERM');
  const stopped = await exited(cluster.coordinator, 20_000);
  t.ok(
    stopped.ms < graceMs + 3000,
    `the coordinator ended ${stopped.ms.toFixed(0)} ms after SIGTERM`,
  );
  t.not(stopped.code, null, 'by exiting, not by being killed');
  t.comment(`exit code ${stopped.code}; ${lines(cluster.coordinator).slice(-2).join(' / ')}`);

  // Where nothing is left to stop it, the grace timer itself ends the process.
  const hung = holdAfterSignal(graceMs);
  await hung.armed;
  const started = performance.now();
  hung.child.kill('SIGTERM');
  const [code] = (await once(hung.child, 'exit')) as [number];
  const ms = performance.now() - started;
  t.equal(code, 1);
  t.ok(ms >= graceMs - 100 && ms < graceMs + 2000, `exited ${ms.toFixed(0)} ms after SIGTERM`);
  t.match(hung.log(), /still running 1500 ms after SIGTERM \(--shutdown-grace-ms\): exiting/);

  const twice = holdAfterSignal(60_000);
  await twice.armed;
  twice.child.kill('SIGINT');
  await twice.stopping;
  const again = performance.now();
  twice.child.kill('SIGINT');
  const [twiceCode] = (await once(twice.child, 'exit')) as [number];
  t.equal(twiceCode, 1);
  t.ok(performance.now() - again < 2000, 'a second signal exits at once');
  t.match(twice.log(), /SIGINT again: exiting now/);
});

/**
 * A process that arms the CLI's signal handling, then never finishes stopping (an
 * interval keeps it alive): only the grace timer or a second signal can end it.
 */
function holdAfterSignal(graceMs: number) {
  const program = `
    import { untilSignal } from ${JSON.stringify(join(REPO_ROOT, 'packages/cli/dist/ui/log.js'))};
    setInterval(() => {}, 1000);
    const stopping = untilSignal({ graceMs: ${graceMs} });
    process.stderr.write('armed\\n');
    await stopping;
    process.stderr.write('stopping\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', program], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const seen = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (log.includes(text)) resolve();
      };
      child.stderr!.on('data', (chunk) => {
        log += chunk;
        check();
      });
      check();
    });
  return { child, log: () => log, armed: seen('armed'), stopping: seen('stopping') };
}
