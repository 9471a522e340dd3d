/**
 * Loopback helpers for protocol tests: servers on 127.0.0.1:0 closed in teardown, a raw
 * WebSocket client that does the handshake by hand (so a test can then misbehave), and
 * a TCP proxy that records every byte both ways.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import {
  type ChannelServer,
  connect,
  createNonce,
  decode,
  encode,
  helloProof,
  type ListenOptions,
  listen,
  type Message,
  PROTOCOL_VERSION,
  type Role,
  type ServerChannel,
} from '@swarmbee/protocol';
import type { Test } from 'tap';
import { WebSocket } from 'ws';

export const TOKEN = 'test-cluster-token-3b7e0c9d41f2';

/** Rejects when `ms` pass first; the timer never outlives the race. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startServer(
  t: Test,
  options: Partial<ListenOptions> = {},
  onChannel: (channel: ServerChannel) => void = () => {},
): Promise<ChannelServer> {
  const server = await listen({ host: '127.0.0.1', port: 0, token: TOKEN, ...options }, onChannel);
  t.teardown(() => server.close());
  return server;
}

/** connect() with test defaults, closing the channel in teardown. */
export async function startClient<R extends Role>(
  t: Test,
  url: string,
  options: Partial<Parameters<typeof connect<R>>[1]> & { role: R },
) {
  const channel = await connect(url, { token: TOKEN, name: 'test-client', ...options });
  t.teardown(() => {
    channel.terminate();
  });
  return channel;
}

/** Collects what is published on a diagnostics channel until teardown. */
export function collect<T>(t: Test, name: string): T[] {
  const events: T[] = [];
  const listener = (event: unknown): void => {
    events.push(event as T);
  };
  subscribe(name, listener);
  t.teardown(() => unsubscribe(name, listener));
  return events;
}

export interface RawPeer {
  ws: WebSocket;
  /** Decoded frames received after the welcome, in order. */
  received: Message[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a WebSocket and answers the challenge by hand; resolves after the welcome. */
export async function rawHandshake(
  t: Test,
  url: string,
  options: {
    role?: Role;
    name?: string;
    token?: string;
    protocolVersion?: number;
    autoPong?: boolean;
  } = {},
): Promise<RawPeer> {
  const ws = new WebSocket(url, { perMessageDeflate: false, autoPong: options.autoPong ?? true });
  t.teardown(() => ws.terminate());
  const received: Message[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => {});
  const welcomed = new Promise<void>((resolve, reject) => {
    const clientNonce = createNonce();
    ws.on('message', (data: Buffer) => {
      const message = decode(data);
      if (message.type === 'challenge') {
        const role = options.role ?? 'stage';
        const name = options.name ?? 'raw-peer';
        const proof = helloProof(options.token ?? TOKEN, {
          serverNonce: message.nonce,
          clientNonce,
          role,
          name,
        });
        ws.send(
          encode({
            type: 'hello',
            protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION,
            role,
            name,
            clientNonce,
            proof,
          }),
        );
      } else if (message.type === 'welcome') {
        resolve();
      } else {
        received.push(message);
        if (message.type === 'error')
          reject(Object.assign(new Error(message.message), { code: message.code }));
      }
    });
    ws.once('close', () => reject(new Error('closed during the handshake')));
  });
  await within(welcomed, 3_000, 'raw handshake');
  return { ws, received, closed };
}

/** Waits for the next message of a raw peer, decoded. */
export async function nextFrame(ws: WebSocket, ms = 2_000): Promise<Message> {
  const [data] = (await within(once(ws, 'message'), ms, 'next frame')) as [Buffer];
  return decode(data);
}

export interface RecordingProxy {
  port: number;
  /** Every byte that crossed the proxy, both directions. */
  recorded(): Buffer;
}

/** A TCP proxy in front of `targetPort` that records the bytes it relays. */
export async function startRecordingProxy(t: Test, targetPort: number): Promise<RecordingProxy> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const proxy = createServer((inbound) => {
    const outbound = tcpConnect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    inbound.on('data', (chunk: Buffer) => chunks.push(chunk));
    outbound.on('data', (chunk: Buffer) => chunks.push(chunk));
    inbound.pipe(outbound).pipe(inbound);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });
  const address = proxy.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return { port: address.port, recorded: () => Buffer.concat(chunks) };
}
