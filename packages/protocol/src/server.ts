/**
 * `listen`: a WebSocket server (ws:// or wss://) that authenticates every connection
 * and hands each one over as a Channel of the plane its role speaks.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, ListenFailedError } from '@swarmbee/core';
import { type WebSocket, WebSocketServer } from 'ws';
import { CLOSE_CODES } from './close-codes.js';
import { ROLES, type Role } from './messages/index.js';
import {
  type ChannelOptions,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  resolveChannelOptions,
} from './options.js';
import { acceptConnection, type ServerChannel } from './server-handshake.js';

export type { ServerChannel };

/** Certificate and key for wss://, as PEM text or as file paths (one of each pair). */
export interface ServerTlsOptions {
  cert?: string | Buffer;
  key?: string | Buffer;
  certFile?: string;
  keyFile?: string;
}

export interface ListenOptions extends ChannelOptions {
  /** Address to bind; default 127.0.0.1. Use 0.0.0.0 (ideally with tls) to serve a LAN. */
  host?: string;
  /** Port to bind; default 0, any free port (read it back from `server.port`). */
  port?: number;
  /** The cluster join token every peer must prove it holds. Required, non-empty. */
  token: string;
  /** Serve wss:// with this certificate; default plain ws://. */
  tls?: ServerTlsOptions;
  /** Time a new connection has to authenticate before it is closed, ms; default 5000. */
  handshakeTimeoutMs?: number;
  /** Roles allowed to connect; default all of `worker`, `stage`, `coordinator`. */
  roles?: readonly Role[];
  /** Aborting closes the server, as `close()` does. */
  signal?: AbortSignal;
}

export interface ChannelServer {
  /** Where peers connect, e.g. `ws://127.0.0.1:40123`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Authenticated channels that are open now. */
  readonly channels: ReadonlySet<ServerChannel>;
  /**
   * Stops accepting, closes every connection (1001 going away) and resolves when all are
   * gone; each gets up to closeTimeoutMs. Aborting `signal` cuts the remaining ones at once.
   */
  close(options?: { signal?: AbortSignal }): Promise<void>;
}

async function pem(
  name: string,
  text: string | Buffer | undefined,
  file: string | undefined,
): Promise<string | Buffer> {
  if ((text === undefined) === (file === undefined)) {
    throw new InvalidArgumentError(`tls needs exactly one of ${name} and ${name}File`);
  }
  return text ?? (await readFile(file!));
}

async function createServer(tls: ServerTlsOptions | undefined): Promise<Server> {
  if (tls === undefined) return createHttpServer();
  const [cert, key] = await Promise.all([
    pem('cert', tls.cert, tls.certFile),
    pem('key', tls.key, tls.keyFile),
  ]);
  return createHttpsServer({ cert, key });
}

function formatUrl(secure: boolean, host: string, port: number): string {
  const shown = host.includes(':') ? `[${host}]` : host;
  return `${secure ? 'wss' : 'ws'}://${shown}:${port}`;
}

/**
 * Listens for peers. `onChannel` runs once per authenticated connection, in the same
 * tick as the welcome is sent; if it throws (or its promise rejects), that channel
 * closes with 1011 and the server carries on.
 */
export async function listen(
  options: ListenOptions,
  onChannel: (channel: ServerChannel) => void | Promise<void>,
): Promise<ChannelServer> {
  const { token, host = '127.0.0.1', port = 0, signal } = options;
  if (typeof token !== 'string' || token.length === 0) {
    throw new InvalidArgumentError('listen needs a non-empty cluster token');
  }
  const channelOptions = resolveChannelOptions(options);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const roles = new Set<Role>(options.roles ?? ROLES);
  signal?.throwIfAborted();

  const http = await createServer(options.tls);
  http.on('request', (_request, response) => {
    response
      .writeHead(426, { 'content-type': 'text/plain' })
      .end('SwarmBee speaks WebSocket here.\n');
  });
  const wss = new WebSocketServer({
    server: http,
    maxPayload: channelOptions.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  /** Connections still in the handshake: not yet channels, so closing the server cuts them. */
  const handshaking = new Set<WebSocket>();
  const channels = new Set<ServerChannel>();
  wss.on('error', () => {
    // Listening errors surface from http.listen below; later ones are per connection.
  });
  wss.on('connection', (ws, request) => {
    handshaking.add(ws);
    ws.once('close', () => handshaking.delete(ws));
    acceptConnection(ws, request, {
      token,
      roles,
      handshakeTimeoutMs,
      channelOptions,
      onChannel: (channel) => {
        handshaking.delete(ws);
        channels.add(channel);
        channel.once('close', () => channels.delete(channel));
        const fail = (): void => channel.close(CLOSE_CODES.internalError, 'SWARMBEE_ERR_INTERNAL');
        try {
          // An async handler's rejection must end its channel, not the process.
          const handled: unknown = onChannel(channel);
          if (handled instanceof Promise) handled.catch(fail);
        } catch {
          fail();
        }
      },
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(
        new ListenFailedError(`cannot listen on ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      );
    };
    http.once('error', onError);
    http.listen({ host, port }, () => {
      http.off('error', onError);
      resolve();
    });
  });

  const bound = (http.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (closeOptions: { signal?: AbortSignal } = {}): Promise<void> => {
    // Aborting a close skips the closing handshakes: every connection is cut at once.
    const cut = (): void => {
      for (const channel of channels) channel.terminate();
    };
    closeOptions.signal?.addEventListener('abort', cut, { once: true });
    if (closeOptions.signal?.aborted) cut();
    closing ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      for (const ws of handshaking) ws.terminate();
      await Promise.all(
        [...channels].map((channel) => {
          channel.close(CLOSE_CODES.goingAway, 'server closing');
          return channel.closed;
        }),
      );
      http.closeAllConnections();
      wss.close();
      await stopped;
    })();
    return closing.finally(() => closeOptions.signal?.removeEventListener('abort', cut));
  };
  const onAbort = (): void => {
    void close();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return {
    url: formatUrl(options.tls !== undefined, host, bound),
    host,
    port: bound,
    channels,
    close,
  };
}
