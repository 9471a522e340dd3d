/**
 * Limits of a channel, each with its default and unit. `listen` and `connect` take the
 * same options and hand them to every channel they make.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { DEFAULT_MAX_FRAME_BYTES } from './codec.js';

export { DEFAULT_MAX_FRAME_BYTES };
/** Default send-buffer level past which `send` returns false, bytes (4 MiB). */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Default send-buffer level past which `send` throws SendQueueFullError, bytes (256 MiB). */
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024;
/** Default time between pings, ms. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;
/** Default silence after which the peer counts as dead, ms. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 6_000;
/** Default time `request` waits for its reply, ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default time `close` waits for the peer's close frame before terminating, ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 2_000;
/** Default time to connect and authenticate (TCP, TLS, upgrade, challenge–response), ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;

export interface ChannelOptions {
  /**
   * Largest frame this end accepts, bytes; default 64 MiB. A bigger incoming frame
   * closes the connection with 1009 and FrameTooLargeError; a bigger outgoing one is
   * refused by `send` with FrameTooLargeError and the connection stays up.
   */
  maxFrameBytes?: number;
  /** Buffered outgoing bytes past which `send` returns false (then `drain`), bytes; default 4 MiB. */
  highWaterMarkBytes?: number;
  /**
   * Buffered outgoing bytes `send` will never exceed: it throws a retryable
   * SendQueueFullError instead; bytes; default 256 MiB. At least maxFrameBytes.
   */
  maxQueuedBytes?: number;
  /** Time between pings, ms; default 2000; 0 turns heartbeats off. */
  heartbeatIntervalMs?: number;
  /**
   * Silence (no pong, ping or data from the peer) after which the socket is terminated
   * with PeerTimeoutError, ms; default 6000. Detected within timeout + interval.
   */
  heartbeatTimeoutMs?: number;
  /** Time `request` waits for its reply unless told otherwise, ms; default 30000. */
  requestTimeoutMs?: number;
  /** Time `close` waits for the peer's close frame before terminating the socket, ms; default 2000. */
  closeTimeoutMs?: number;
  /**
   * Check every outgoing message against its schema, so a malformed one throws
   * MessageSchemaError in `send` instead of making the peer close the connection;
   * default true. The data plane's `forward` and `tokens` are checked structurally (a few
   * comparisons per field), the rest by schema.
   */
  checkOutgoing?: boolean;
}

export type ResolvedChannelOptions = Required<ChannelOptions>;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** Fills in defaults and checks that the limits make sense together. */
export function resolveChannelOptions(options: ChannelOptions = {}): ResolvedChannelOptions {
  const maxFrameBytes = positive('maxFrameBytes', options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  const highWaterMarkBytes = positive(
    'highWaterMarkBytes',
    options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES,
  );
  const maxQueuedBytes = positive(
    'maxQueuedBytes',
    options.maxQueuedBytes ?? Math.max(DEFAULT_MAX_QUEUED_BYTES, maxFrameBytes),
  );
  if (maxQueuedBytes < maxFrameBytes) {
    throw new InvalidArgumentError(
      `maxQueuedBytes (${maxQueuedBytes}) must be at least maxFrameBytes (${maxFrameBytes})`,
    );
  }
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  if (!Number.isFinite(heartbeatIntervalMs) || heartbeatIntervalMs < 0) {
    throw new InvalidArgumentError(`heartbeatIntervalMs must be >= 0, got ${heartbeatIntervalMs}`);
  }
  const heartbeatTimeoutMs = positive(
    'heartbeatTimeoutMs',
    options.heartbeatTimeoutMs ?? Math.max(DEFAULT_HEARTBEAT_TIMEOUT_MS, 2 * heartbeatIntervalMs),
  );
  if (heartbeatIntervalMs > 0 && heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw new InvalidArgumentError(
      `heartbeatTimeoutMs (${heartbeatTimeoutMs}) must exceed heartbeatIntervalMs (${heartbeatIntervalMs})`,
    );
  }
  return {
    maxFrameBytes,
    highWaterMarkBytes,
    maxQueuedBytes,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    requestTimeoutMs: positive(
      'requestTimeoutMs',
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ),
    closeTimeoutMs: positive('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS),
    checkOutgoing: options.checkOutgoing ?? true,
  };
}
