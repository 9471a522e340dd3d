/**
 * `connect`: open a WebSocket (ws:// or wss://) to a SwarmBee server, run the client's
 * half of the handshake (answer the challenge, check the server's proof) and resolve
 * with a Channel of the plane the role speaks.
 */
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import {
  AbortedError,
  AuthFailedError,
  asSwarmBeeError,
  ChannelClosedError,
  ConnectFailedError,
  fromWire,
  HandshakeTimeoutError,
  InvalidArgumentError,
  ProtocolVersionError,
  type SwarmBeeError,
} from '@swarmbee/core';
import { type RawData, WebSocket } from 'ws';
import { createNonce, helloProof, proofsMatch, welcomeProof } from './auth.js';
import { Channel } from './channel.js';
import { closeCodeFor, errorForClose } from './close-codes.js';
import { decode, encode } from './codec.js';
import { channelOpenChannel, publish } from './diagnostics.js';
import { type PlaneOfRole, PROTOCOL_VERSION, planeOfRole, type Role } from './messages/index.js';
import {
  type ChannelOptions,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  resolveChannelOptions,
} from './options.js';

/** Leaves the masking key zero: ws then neither copies nor XORs the payload (nor does its peer). */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** How the client checks a wss:// server's certificate. */
export interface ClientTlsOptions {
  /** CA certificates to trust (PEM), e.g. the cluster's self-signed cert; default the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Path of a PEM file of CA certificates to trust, instead of `ca`. */
  caFile?: string;
  /** Refuse servers whose certificate does not verify; default true. */
  rejectUnauthorized?: boolean;
  /** Name to verify the certificate against; default the URL's host. */
  servername?: string;
}

export interface ConnectOptions<R extends Role = Role> extends ChannelOptions {
  /** The cluster join token. It never leaves this process; only proofs over it do. */
  token: string;
  /** Who this end is: decides the plane (`worker` → control, `stage`/`coordinator` → data). */
  role: R;
  /** This end's name, as the server will know it. */
  name: string;
  /** Certificate checks for wss:// URLs. */
  tls?: ClientTlsOptions;
  /** Time to connect and authenticate (TCP, TLS, upgrade, challenge–response), ms; default 5000. */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Connects and authenticates. Rejects with ConnectFailedError (unreachable, refused,
 * TLS), AuthFailedError (wrong token either way, refused role), ProtocolVersionError,
 * HandshakeTimeoutError, or AbortedError.
 */
export async function connect<R extends Role>(
  url: string,
  options: ConnectOptions<R>,
): Promise<Channel<PlaneOfRole<R>>> {
  const { token, role, name, signal, tls = {} } = options;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new InvalidArgumentError(`not a URL: ${url}`);
  }
  if (protocol !== 'ws:' && protocol !== 'wss:') {
    throw new InvalidArgumentError(`connect needs a ws:// or wss:// URL, got ${url}`);
  }
  const channelOptions = resolveChannelOptions(options);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const ca = tls.caFile === undefined ? tls.ca : await readFile(tls.caFile);
  if (signal?.aborted)
    throw new AbortedError(`connecting to ${url} aborted`, { cause: signal.reason });

  const ws = new WebSocket(url, {
    maxPayload: channelOptions.maxFrameBytes,
    perMessageDeflate: false,
    ...(ca === undefined ? {} : { ca }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    // Masking (RFC 6455 §5.3) keeps a browser's script from steering what an HTTP proxy sees;
    // no browser writes to the data plane, and a zero key lets both ends skip XOR-ing, and the
    // sender copying, every byte of every hidden state.
    ...(planeOfRole(role) === 'data' ? { generateMask: zeroMask } : {}),
  });

  return new Promise<Channel<PlaneOfRole<R>>>((resolve, reject) => {
    const clientNonce = createNonce();
    let serverNonce: string | undefined;
    let socket: Socket | undefined;
    let settled = false;

    const release = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.off('upgrade', onUpgrade);
      ws.off('message', onMessage);
      ws.off('close', onClose);
    };

    const fail = (error: SwarmBeeError): void => {
      if (settled) return;
      release();
      if (ws.readyState === WebSocket.OPEN) {
        ws.close(closeCodeFor(error), error.code);
        setTimeout(() => ws.terminate(), channelOptions.closeTimeoutMs).unref();
      } else {
        ws.terminate();
      }
      reject(error);
    };

    const answerChallenge = (nonce: string, protocolVersion: number): void => {
      if (protocolVersion !== PROTOCOL_VERSION) {
        throw new ProtocolVersionError(
          `server speaks protocol version ${protocolVersion}, this client ${PROTOCOL_VERSION}`,
        );
      }
      serverNonce = nonce;
      const proof = helloProof(token, { serverNonce, clientNonce, role, name });
      ws.send(
        encode({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          role,
          name,
          clientNonce,
          proof,
        }),
      );
    };

    const onMessage = (data: RawData, isBinary: boolean): void => {
      if (settled) return;
      try {
        if (!isBinary)
          throw new ProtocolVersionError(
            'server sent a text frame; it does not speak this protocol',
          );
        const message = decode(data as Buffer, {
          plane: 'handshake',
          maxFrameBytes: channelOptions.maxFrameBytes,
        });
        if (message.type === 'error') throw fromWire(message);
        if (message.type === 'challenge' && serverNonce === undefined) {
          answerChallenge(message.nonce, message.protocolVersion);
          return;
        }
        if (message.type !== 'welcome' || serverNonce === undefined) {
          throw new AuthFailedError(`unexpected ${message.type} during the handshake`);
        }
        if (!proofsMatch(welcomeProof(token, { clientNonce, serverNonce }), message.proof)) {
          throw new AuthFailedError('the server could not prove it holds the cluster token');
        }
      } catch (error) {
        fail(asSwarmBeeError(error));
        return;
      }
      release();
      // Built inside this 'message' event: frames the server sent right after the
      // welcome may be emitted in this same tick, and must find the channel's listener.
      const channel = new Channel(ws, {
        plane: planeOfRole(role),
        peer: { name: url, address: socket?.remoteAddress },
        socket,
        options: channelOptions,
      });
      ws.off('error', onError);
      publish(channelOpenChannel, () => ({ peer: channel.peer, plane: channel.plane }));
      resolve(channel);
    };

    const onUpgrade = (response: { socket: Socket }): void => {
      socket = response.socket;
    };
    const onError = (error: Error): void => {
      fail(new ConnectFailedError(`cannot connect to ${url}: ${error.message}`, { cause: error }));
    };
    const onClose = (code: number, reason: Buffer): void => {
      fail(
        errorForClose(code, reason.toString()) ??
          new ChannelClosedError(`${url} closed the connection during the handshake (${code})`),
      );
    };
    const onAbort = (): void => {
      fail(new AbortedError(`connecting to ${url} aborted`, { cause: signal?.reason }));
    };
    const timer = setTimeout(
      () =>
        fail(
          new HandshakeTimeoutError(
            `no authenticated connection to ${url} within ${handshakeTimeoutMs} ms`,
          ),
        ),
      handshakeTimeoutMs,
    );

    ws.on('upgrade', onUpgrade);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
