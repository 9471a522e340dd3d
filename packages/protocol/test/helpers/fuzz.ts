/**
 * Seeded random and mutated frames, and the exchange that judges a peer's answer to
 * one: shared by the protocol's own fuzz test and the cluster's.
 */
import { decode, encode, type Message, PROTOCOL_VERSION } from '@swarmbee/protocol';
import { Packr } from 'msgpackr';
import type { WebSocket } from 'ws';
import { ALL_SAMPLES, DATA_SAMPLES } from './messages.js';

export interface Fuzzer {
  rand: () => number;
  int: (n: number) => number;
  pick: <T>(items: readonly T[]) => T;
  /** A random, truncated, extended, corrupted or re-typed frame. */
  frame: () => Buffer | string;
}

/** mulberry32: small, seedable, good enough to pick mutations. */
export function random(seedValue: number): () => number {
  let state = seedValue >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeFuzzer(seed: number): Fuzzer {
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
    'values',
    'seq',
    'round',
    'offset',
    'group',
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

  return { rand, int, pick, frame: fuzzFrame };
}

export type Outcome = 'error' | 'closed' | 'accepted';

/** Sends one frame and waits for what the server does about it. */
export function exchange(ws: WebSocket, frame: Buffer | string): Promise<Outcome> {
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
