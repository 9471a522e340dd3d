/**
 * The server's half of the handshake on one fresh connection: challenge, check the
 * hello, answer with welcome, then hand over a Channel. Any failure answers with a coded
 * `error` frame, closes that one connection and is published on
 * `swarmbee:protocol:auth-failed`; nothing is thrown to the caller.
 */
import type { IncomingMessage } from 'node:http';
import {
  AuthFailedError,
  asSwarmBeeError,
  FrameInvalidError,
  HandshakeTimeoutError,
  ProtocolVersionError,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { RawData, WebSocket } from 'ws';
import { createNonce, helloProof, proofsMatch, welcomeProof } from './auth.js';
import { Channel } from './channel.js';
import { closeCodeFor } from './close-codes.js';
import { decode, encode, errorMessageFor } from './codec.js';
import { authFailedChannel, channelOpenChannel, publish } from './diagnostics.js';
import {
  type HandshakeMessage,
  type HelloMessage,
  PROTOCOL_VERSION,
  planeOfRole,
  type Role,
} from './messages/index.js';
import type { ResolvedChannelOptions } from './options.js';

/**
 * Most bytes a client may send before it is authenticated. A hello is a few hundred
 * bytes; the limit keeps strangers from making us buffer a maxFrameBytes-sized frame.
 */
export const MAX_HANDSHAKE_BYTES = 16 * 1024;

/** Time a refused connection gets to take our close frame before it is cut, ms. */
const REFUSED_CLOSE_GRACE_MS = 500;

export type ServerChannel = Channel<'control'> | Channel<'data'>;

export interface AcceptOptions {
  token: string;
  roles: ReadonlySet<Role>;
  handshakeTimeoutMs: number;
  channelOptions: ResolvedChannelOptions;
  onChannel: (channel: ServerChannel) => void;
}

export function acceptConnection(
  ws: WebSocket,
  request: IncomingMessage,
  options: AcceptOptions,
): void {
  const { token, roles } = options;
  const socket = request.socket;
  const address = socket.remoteAddress;
  const serverNonce = createNonce();
  let hello: HelloMessage | undefined;
  let settled = false;
  let bytesBeforeAuth = 0;

  const release = (): void => {
    settled = true;
    clearTimeout(timer);
    socket.off('data', countBytes);
    ws.off('message', onMessage);
    ws.off('close', onClose);
  };

  const refuse = (error: SwarmBeeError, peer?: { role?: string; name?: string }): void => {
    if (settled) return;
    release();
    publish(authFailedChannel, () => ({
      address,
      role: peer?.role,
      name: peer?.name,
      code: error.code,
      reason: error.message,
    }));
    try {
      ws.send(encode(errorMessageFor(error)));
      ws.close(closeCodeFor(error), error.code);
    } catch {
      // Already closing; terminate below still ends it.
    }
    setTimeout(() => ws.terminate(), REFUSED_CLOSE_GRACE_MS).unref();
  };

  const countBytes = (chunk: Buffer): void => {
    bytesBeforeAuth += chunk.byteLength;
    if (bytesBeforeAuth > MAX_HANDSHAKE_BYTES) {
      refuse(new AuthFailedError(`sent ${bytesBeforeAuth} bytes before authenticating`));
      ws.terminate();
    }
  };

  const checkHello = (data: RawData, isBinary: boolean): HelloMessage => {
    if (!isBinary) throw new FrameInvalidError('text frames are not part of the protocol');
    let message: HandshakeMessage;
    try {
      message = decode(data as Buffer, { plane: 'handshake', maxFrameBytes: MAX_HANDSHAKE_BYTES });
    } catch (error) {
      const coded = asSwarmBeeError(error);
      if (coded instanceof ProtocolVersionError) throw coded;
      throw new AuthFailedError(`expected a hello: ${coded.message}`, { cause: coded });
    }
    if (message.type !== 'hello')
      throw new AuthFailedError(`expected a hello, got ${message.type}`);
    hello = message;
    if (message.protocolVersion !== PROTOCOL_VERSION) {
      throw new ProtocolVersionError(
        `client speaks protocol version ${message.protocolVersion}, this server ${PROTOCOL_VERSION}`,
      );
    }
    if (!roles.has(message.role))
      throw new AuthFailedError(`role ${message.role} is not accepted here`);
    const expected = helloProof(token, {
      serverNonce,
      clientNonce: message.clientNonce,
      role: message.role,
      name: message.name,
    });
    if (!proofsMatch(expected, message.proof)) {
      throw new AuthFailedError('the hello proof does not match the cluster token');
    }
    return message;
  };

  const onMessage = (data: RawData, isBinary: boolean): void => {
    if (settled) return;
    let accepted: HelloMessage;
    try {
      accepted = checkHello(data, isBinary);
    } catch (error) {
      refuse(asSwarmBeeError(error), hello);
      return;
    }
    release();
    const { role, name, clientNonce } = accepted;
    let channel: ServerChannel;
    try {
      ws.send(
        encode({ type: 'welcome', proof: welcomeProof(token, { clientNonce, serverNonce }) }),
      );
      // Built in the same tick as the welcome goes out, so no later frame can miss its listener.
      channel = new Channel(ws, {
        plane: planeOfRole(role),
        peer: { role, name, address },
        socket,
        options: options.channelOptions,
      }) as ServerChannel;
    } catch {
      ws.terminate();
      return;
    }
    ws.off('error', ignoreError);
    publish(channelOpenChannel, () => ({ peer: channel.peer, plane: channel.plane }));
    options.onChannel(channel);
  };

  const onClose = (): void => release();
  // A socket-level failure before authentication just ends this connection; 'close' follows.
  const ignoreError = (): void => {};

  const timer = setTimeout(
    () =>
      refuse(new HandshakeTimeoutError(`no valid hello within ${options.handshakeTimeoutMs} ms`)),
    options.handshakeTimeoutMs,
  );
  timer.unref();
  socket.on('data', countBytes);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', ignoreError);
  ws.send(encode({ type: 'challenge', protocolVersion: PROTOCOL_VERSION, nonce: serverNonce }));
}
