/**
 * LAN discovery over mDNS (`swarmbee coordinator --mdns`, `swarmbee worker
 * --discover`), run on loopback only: every mDNS socket here uses the 127.0.0.1
 * interface and a free port of its own, never 5353 on a real network. Skipped
 * with a message where multicast does not work on loopback (failed under CI=true).
 */

import { createHmac } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import {
  announceCoordinator,
  COORDINATOR_EVENTS,
  type ListeningEvent,
} from '@swarmbee/coordinator';
import { clusterFingerprint, type MdnsOptions } from '@swarmbee/protocol';
import { discoverCoordinator, WORKER_EVENTS } from '@swarmbee/worker';
import t, { type Test } from 'tap';
import { runCli } from './helpers/cli.js';
import { helpPage } from './helpers/cli-spec.js';
import { type ProcessHandle, startProcess } from './helpers/cluster.js';

/** A free UDP port on loopback. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** mDNS confined to loopback on a port of this test's own. */
async function loopbackMdns(): Promise<MdnsOptions> {
  return { interface: '127.0.0.1', bind: '0.0.0.0', port: await freeUdpPort() };
}

/** Whether a multicast datagram sent on the loopback interface comes back, within 2 s. */
async function multicastOnLoopback(): Promise<boolean> {
  const port = await freeUdpPort();
  const receiver = createSocket({ type: 'udp4', reuseAddr: true });
  const sender = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 2000);
      receiver.once('message', () => {
        clearTimeout(timer);
        resolve(true);
      });
      receiver.once('error', () => resolve(false));
      sender.once('error', () => resolve(false));
      receiver.bind(port, () => {
        try {
          receiver.addMembership('224.0.0.251', '127.0.0.1');
          sender.bind(() => {
            sender.setMulticastInterface('127.0.0.1');
            sender.send('swarmbee', port, '224.0.0.251');
          });
        } catch {
          resolve(false);
        }
      });
    });
  } finally {
    receiver.close();
    sender.close();
  }
}

const haveMulticast = await multicastOnLoopback();

function needMulticast(t: Test): boolean {
  if (haveMulticast) return true;
  const message = 'multicast does not reach back over the loopback interface here';
  if (process.env.CI === 'true') t.fail(`${message}; CI needs it for the mDNS tests`);
  else t.plan(0, `${message}; skipping the mDNS tests`);
  return false;
}

t.test('the cluster fingerprint is HMAC-SHA256 of a fixed label under the token', async (t) => {
  // The coordinator announces it and the worker compares it: both call this one function.
  for (const token of ['a', 'test-token', 'f'.repeat(48)])
    t.equal(
      clusterFingerprint(token),
      createHmac('sha256', token).update('swarmbee mdns cluster v1').digest('hex').slice(0, 16),
    );
  t.not(clusterFingerprint('one'), clusterFingerprint('two'));
  t.match(clusterFingerprint('one'), /^[0-9a-f]{16}$/, '64 bits: no token in the clear');
});

t.test('the CLI has the flags: worker --discover, coordinator --mdns', async (t) => {
  const worker = await helpPage(['worker']);
  t.equal(worker.options.get('discover')?.type, 'boolean');
  t.equal(worker.options.get('join')?.required, false, '--join or --discover');
  t.equal((await helpPage(['coordinator'])).options.get('mdns')?.type, 'boolean');
  const neither = await runCli(['worker'], { env: { SWARMBEE_TOKEN: 'x' } });
  t.equal(neither.code, 1);
  t.match(neither.stderr, /SWARMBEE_ERR_INVALID_ARGUMENT: pass --join .* or --discover/);
});

t.test('a worker finds the coordinator of its cluster and skips another', async (t) => {
  if (!needMulticast(t)) return;
  const mdns = await loopbackMdns();
  const other = announceCoordinator({ token: 'other-cluster', port: 41_001, name: 'other', mdns });
  const ours = announceCoordinator({ token: 'our-cluster', port: 41_002, name: 'ours', mdns });
  t.teardown(() => Promise.all([other.stop(), ours.stop()]));
  const skipped: string[] = [];
  const found = await discoverCoordinator({
    token: 'our-cluster',
    timeoutMs: 10_000,
    mdns,
    log: (line) => skipped.push(line),
  });
  t.same(found, { name: 'ours', url: 'ws://127.0.0.1:41002' }, "at the answer's source address");
  t.ok(
    skipped.every((line) => /"other": another cluster/.test(line)),
    skipped.join('\n'),
  );
});

t.test('the URL a coordinator announces wins over its address', async (t) => {
  if (!needMulticast(t)) return;
  const mdns = await loopbackMdns();
  const url = 'wss://coordinator.example:7443';
  const announced = announceCoordinator({
    token: 'tls-cluster',
    port: 7070,
    url,
    name: 'tls',
    mdns,
  });
  t.teardown(() => announced.stop());
  const found = await discoverCoordinator({ token: 'tls-cluster', timeoutMs: 10_000, mdns });
  t.equal(found.url, url);
});

t.test(
  'no coordinator of this cluster: a coded error after the timeout, or on abort',
  async (t) => {
    if (!needMulticast(t)) return;
    const mdns = await loopbackMdns();
    const stranger = announceCoordinator({
      token: 'someone-else',
      port: 41_003,
      name: 'stranger',
      mdns,
    });
    t.teardown(() => stranger.stop());
    const started = Date.now();
    await t.rejects(discoverCoordinator({ token: 'lonely', timeoutMs: 1500, mdns }), {
      code: 'SWARMBEE_ERR_CONNECT_FAILED',
      message: /no coordinator of this cluster answered.*--mdns.*--join/,
    });
    t.ok(Date.now() - started < 5000, 'within the timeout');
    const abort = new AbortController();
    const looking = discoverCoordinator({ token: 'lonely', signal: abort.signal, mdns });
    setTimeout(() => abort.abort(), 200);
    await t.rejects(looking, { code: 'SWARMBEE_ERR_ABORTED' });
  },
);

t.test('a worker joins a real coordinator at the URL it discovered', async (t) => {
  if (!needMulticast(t)) return;
  const root = t.testdir();
  const model = join(root, 'tiny');
  const synth = await runCli(['model', 'synth', '--preset', 'tiny', '--seed', '1', '--out', model]);
  t.equal(synth.code, 0, synth.stderr);
  const env = { SWARMBEE_TOKEN: `mdns-${process.pid}` };
  // Stopped here rather than in teardown, which tap runs after removing the test dir.
  const processes: ProcessHandle[] = [];
  try {
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
        join(root, 'coordinator'),
        '--log-format',
        'json',
      ],
      env,
    );
    processes.push(coordinator);
    const { workersUrl } = await coordinator.waitForEvent<ListeningEvent>(
      COORDINATOR_EVENTS.listening,
    );
    const mdns = await loopbackMdns();
    const announced = announceCoordinator({
      token: env.SWARMBEE_TOKEN,
      port: Number(new URL(workersUrl).port),
      mdns,
    });
    t.teardown(() => announced.stop());
    const found = await discoverCoordinator({ token: env.SWARMBEE_TOKEN, timeoutMs: 10_000, mdns });
    t.equal(found.url, workersUrl, 'the discovered URL is the one the coordinator listens on');
    const worker = startProcess(
      [
        'worker',
        '--join',
        found.url,
        '--listen',
        '127.0.0.1:0',
        '--name',
        'found-1',
        '--cache-dir',
        join(root, 'worker'),
        '--log-format',
        'json',
      ],
      env,
    );
    processes.push(worker);
    await worker.waitForEvent(WORKER_EVENTS.registered);
    t.pass('registered');
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
});
