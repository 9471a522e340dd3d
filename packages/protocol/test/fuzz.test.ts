/**
 * Random and mutated frames against a listening server: each one must be answered with
 * an `error` frame, a close, or (when the mutation happens to stay valid) the server's
 * normal reply; the process must not crash or hang, and the server must still accept a
 * valid client at the end. Seeded, so a failure can be replayed with FUZZ_SEED.
 */
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import type { Message } from '@swarmbee/protocol';
import t from 'tap';
import { exchange, makeFuzzer, type Outcome } from './helpers/fuzz.js';
import { DATA_SAMPLES } from './helpers/messages.js';
import { type RawPeer, rawHandshake, startClient, startServer, within } from './helpers/net.js';

const FRAMES = 2_000;
const BUDGET_MS = 20_000;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

const fuzzer = makeFuzzer(seed);
const { rand, int } = fuzzer;
const fuzzFrame = fuzzer.frame;

t.test(`fuzz: ${FRAMES} random and mutated frames (seed ${seed})`, async (t) => {
  const server = await startServer(t, { handshakeTimeoutMs: 1_000 }, (channel) => {
    if (channel.plane !== 'data') return;
    channel.on('message', () => {
      if (channel.state === 'open') channel.send({ type: 'release', seqIds: ['ack'] });
    });
  });
  const counts: Record<Outcome | 'preAuth' | 'rawTcp', number> = {
    error: 0,
    closed: 0,
    accepted: 0,
    preAuth: 0,
    rawTcp: 0,
  };
  const deadline = Date.now() + BUDGET_MS;
  let peer: RawPeer | undefined;
  let sent = 0;
  for (; sent < FRAMES && Date.now() < deadline; sent++) {
    const roll = rand();
    if (roll < 0.02) {
      // Not WebSocket at all: random bytes straight onto the TCP port.
      const socket = tcpConnect({ host: '127.0.0.1', port: server.port });
      socket.on('error', () => {});
      socket.resume(); // read the server's 400 reply, or 'close' never comes
      socket.write(Buffer.from(Array.from({ length: 1 + int(200) }, () => int(256))));
      socket.end();
      await within(once(socket, 'close'), 2_000, 'raw TCP close');
      counts.rawTcp += 1;
      continue;
    }
    if (roll < 0.07) {
      // Garbage instead of a hello.
      const { WebSocket } = await import('ws');
      const ws = new WebSocket(server.url);
      ws.on('error', () => {});
      t.teardown(() => ws.terminate());
      await within(once(ws, 'message'), 2_000, 'challenge');
      const outcome = await exchange(ws, fuzzFrame());
      t.not(outcome, 'accepted', 'nothing is accepted before the handshake');
      ws.terminate();
      counts.preAuth += 1;
      continue;
    }
    if (peer === undefined || peer.ws.readyState !== peer.ws.OPEN) {
      peer?.ws.terminate();
      peer = await rawHandshake(t, server.url, { role: 'stage' });
    }
    counts[await exchange(peer.ws, fuzzFrame())] += 1;
  }
  peer?.ws.terminate();
  t.comment(`fuzz outcomes: ${JSON.stringify(counts)}`);
  t.equal(sent, FRAMES, `all ${FRAMES} frames answered within ${BUDGET_MS} ms`);
  t.ok(counts.error + counts.closed > FRAMES / 2, 'most frames were refused');

  const client = await startClient(t, server.url, { role: 'stage' });
  const ack = once(client, 'message');
  client.send(DATA_SAMPLES[1] as Parameters<typeof client.send>[0]);
  const [reply] = (await within(ack, 2_000, 'valid client after fuzzing')) as [Message];
  t.same(reply, { type: 'release', seqIds: ['ack'] }, 'a valid client is still served');
  await within(
    (async () => {
      while (server.channels.size > 1) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    5_000,
    'fuzzed connections to be released',
  );
  t.equal(server.channels.size, 1, 'no fuzzed connection lingers');
});
