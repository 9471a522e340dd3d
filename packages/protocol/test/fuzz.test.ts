/**
 * Random and mutated frames against a listening server: each one must be answered with
 * an `error` frame, a close, or (when the mutation happens to stay valid) the server's
 * normal reply; the process must not crash or hang, and the server must still accept a
 * valid client at the end. Seeded, so a failure can be replayed with FUZZ_SEED.
 */
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { decode, encode, type Message, PROTOCOL_VERSION } from '@swarmbee/protocol';
import { Packr } from 'msgpackr';
import t from 'tap';
import type { WebSocket } from 'ws';
import { ALL_SAMPLES, DATA_SAMPLES } from './helpers/messages.js';
import { type RawPeer, rawHandshake, startClient, startServer, within } from './helpers/net.js';

const FRAMES = 2_000;
const BUDGET_MS = 20_000;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: small, seedable, good enough to pick mutations. */
function random(seedValue: number): () => number {
  let state = seedValue >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(seed);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const foreign = new Packr({ useRecords: false });
const valid = ALL_SAMPLES.map((message) => Buffer.from(encode(message)));
const KEYS = [
  'v',
  'type',
  'rows',
  'seqIds',
  'batchId',
  'hidden',
  'tokens',
  'dims',
  'data',
  'dtype',
  'code',
  '__proto__',
];
const TYPES = ['forward', 'tokens', 'release', 'error', 'drain', 'hello', 'x', '', 'constructor'];

function randomValue(depth: number): unknown {
  switch (int(depth > 2 ? 5 : 8)) {
    case 0:
      return int(2 ** 16) - 2 ** 15;
    case 1:
      return rand() * 1e12;
    case 2:
      return pick(TYPES);
    case 3:
      return rand() < 0.5;
    case 4:
      return Buffer.from(Array.from({ length: int(64) }, () => int(256)));
    case 5:
      return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    case 6:
      return null;
    default: {
      const value: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) {
        // defineProperty, so a '__proto__' key is an own key on the wire, not a prototype here.
        Object.defineProperty(value, pick(KEYS), {
          value: randomValue(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return value;
    }
  }
}

function fuzzFrame(): Buffer | string {
  const base = pick(valid);
  switch (int(8)) {
    case 0:
      return Buffer.from(Array.from({ length: int(300) }, () => int(256)));
    case 1: {
      const copy = Buffer.from(base);
      for (let i = 1 + int(4); i > 0; i--) copy[int(copy.length)] = int(256);
      return copy;
    }
    case 2:
      return base.subarray(0, int(base.length));
    case 3:
      return Buffer.concat([
        base,
        Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))),
      ]);
    case 4: {
      const value = randomValue(0) as Record<string, unknown>;
      return foreign.pack(
        rand() < 0.7 && value && typeof value === 'object'
          ? { v: PROTOCOL_VERSION, type: pick(TYPES), ...value }
          : value,
      );
    }
    case 5: {
      const message = pick(DATA_SAMPLES) as Record<string, unknown>;
      return foreign.pack({ ...message, v: PROTOCOL_VERSION, type: pick(TYPES) });
    }
    case 6:
      return rand() < 0.5 ? '{"type":"release","seqIds":[]}' : 'garbage';
    default:
      return foreign.pack({ ...(pick(DATA_SAMPLES) as object), v: int(4) });
  }
}

type Outcome = 'error' | 'closed' | 'accepted';

/** Sends one frame and waits for what the server does about it. */
function exchange(ws: WebSocket, frame: Buffer | string): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const release = () => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
    };
    const onMessage = (data: Buffer) => {
      let message: Message;
      try {
        message = decode(data);
      } catch (error) {
        release();
        reject(error);
        return;
      }
      release();
      resolve(message.type === 'error' ? 'error' : 'accepted');
    };
    const onClose = () => {
      release();
      resolve('closed');
    };
    const timer = setTimeout(() => {
      release();
      reject(
        new Error(
          `no answer within 2 s to a ${typeof frame === 'string' ? 'text' : `${frame.length}-byte`} frame`,
        ),
      );
    }, 2_000);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.send(frame, { binary: typeof frame !== 'string' });
  });
}

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
