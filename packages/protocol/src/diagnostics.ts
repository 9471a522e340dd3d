/**
 * What the protocol reports through `node:diagnostics_channel`: subscribe by name to log,
 * count or trace; nothing is printed. Publishing costs nothing when no one subscribes.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { DIAGNOSTICS } from '@swarmbee/protocol';
 * subscribe(DIAGNOSTICS.authFailed, (event) => logger.warn(event));
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { Role } from './messages/index.js';

/** Channel names, stable like error codes. */
export const DIAGNOSTICS = {
  /** A bad frame arrived (undecodable, unknown type, wrong version, schema, too large, text). */
  frameError: 'swarmbee:protocol:frame-error',
  /** A peer failed the handshake: wrong or missing token, bad hello, refused role, timeout. */
  authFailed: 'swarmbee:protocol:auth-failed',
  /** A peer went silent past the heartbeat timeout and its socket was terminated. */
  peerTimeout: 'swarmbee:protocol:peer-timeout',
  /** A channel finished its handshake and is open. */
  channelOpen: 'swarmbee:protocol:channel-open',
  /** A channel closed; carries its final byte and frame counters. */
  channelClose: 'swarmbee:protocol:channel-close',
} as const;

/** Who is at the other end of a channel. */
export interface PeerInfo {
  /** The peer's role from its hello; known on the server side only. */
  role?: Role | undefined;
  /** The name the peer gave in its hello; on the client side, the URL connected to. */
  name: string;
  /** Remote IP address, when known. */
  address?: string | undefined;
}

/** Bytes are encoded message bytes (WebSocket and TCP/TLS framing not counted). */
export interface ChannelCounters {
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
}

export interface FrameErrorDiagnostic {
  peer: PeerInfo | undefined;
  code: string;
  message: string;
}

export interface AuthFailedDiagnostic {
  address: string | undefined;
  role: string | undefined;
  name: string | undefined;
  code: string;
  reason: string;
}

export interface PeerTimeoutDiagnostic {
  peer: PeerInfo;
  /** How long nothing had arrived from the peer, ms. */
  silentMs: number;
}

export interface ChannelOpenDiagnostic {
  peer: PeerInfo;
  plane: 'control' | 'data';
}

export interface ChannelCloseDiagnostic {
  peer: PeerInfo;
  code: number;
  reason: string;
  /** Code of the error that ended the channel, when it ended abnormally. */
  errorCode: string | undefined;
  counters: ChannelCounters;
}

export const frameErrorChannel = channel(DIAGNOSTICS.frameError);
export const authFailedChannel = channel(DIAGNOSTICS.authFailed);
export const peerTimeoutChannel = channel(DIAGNOSTICS.peerTimeout);
export const channelOpenChannel = channel(DIAGNOSTICS.channelOpen);
export const channelCloseChannel = channel(DIAGNOSTICS.channelClose);

/** Publishes only when someone listens, so building the event costs nothing otherwise. */
export function publish<T extends object>(
  target: ReturnType<typeof channel>,
  build: () => T,
): void {
  if (target.hasSubscribers) target.publish(build());
}
