/**
 * WebSocket close codes the protocol uses, and the error each one stands for. A channel
 * that closes because of an error puts the error's `code` in the close reason, so the
 * other end learns why even if it missed the `error` frame sent just before.
 */
import {
  AuthFailedError,
  ChannelClosedError,
  FrameInvalidError,
  FrameTooLargeError,
  fromWire,
  HandshakeTimeoutError,
  MessageSchemaError,
  MessageTypeUnknownError,
  PeerTimeoutError,
  ProtocolVersionError,
  type SwarmBeeError,
} from '@swarmbee/core';

export const CLOSE_CODES = {
  /** Closed on purpose, nothing wrong. */
  normal: 1000,
  /** The server is shutting down, or the client is leaving. */
  goingAway: 1001,
  /** The peer broke the protocol: unknown message type, wrong version. */
  protocolError: 1002,
  /** A text frame: the protocol is binary only. */
  unsupportedData: 1003,
  /** No close frame arrived: the socket died or was terminated (never sent on the wire). */
  abnormal: 1006,
  /** A frame did not decode or did not match its schema. */
  invalidPayload: 1007,
  /** Authentication failed or did not finish in time. */
  policyViolation: 1008,
  /** A frame exceeded the receiver's maxFrameBytes. */
  messageTooBig: 1009,
  /** The server hit an unexpected condition. */
  internalError: 1011,
} as const;

/** Errors a peer names in its close reason, rebuilt with their own `retryable` default. */
const CLOSE_REASON_ERRORS: readonly (typeof SwarmBeeError)[] = [
  AuthFailedError,
  ChannelClosedError,
  FrameInvalidError,
  FrameTooLargeError,
  HandshakeTimeoutError,
  MessageSchemaError,
  MessageTypeUnknownError,
  PeerTimeoutError,
  ProtocolVersionError,
];

/** The close code that goes with ending a connection because of `error`. */
export function closeCodeFor(error: SwarmBeeError): number {
  switch (error.code) {
    case FrameTooLargeError.code:
      return CLOSE_CODES.messageTooBig;
    case FrameInvalidError.code:
    case MessageSchemaError.code:
      return CLOSE_CODES.invalidPayload;
    case MessageTypeUnknownError.code:
    case ProtocolVersionError.code:
      return CLOSE_CODES.protocolError;
    case AuthFailedError.code:
    case HandshakeTimeoutError.code:
      return CLOSE_CODES.policyViolation;
    case PeerTimeoutError.code:
      return CLOSE_CODES.abnormal;
    default:
      return CLOSE_CODES.internalError;
  }
}

/**
 * The error a close from the peer stands for, or undefined for a normal close.
 * Codes from other WebSocket implementations without a SwarmBee reason still map to
 * a coded error.
 */
export function errorForClose(code: number, reason: string): SwarmBeeError | undefined {
  if (code === CLOSE_CODES.normal || code === CLOSE_CODES.goingAway) return undefined;
  const message = `connection closed by the peer (${code}${reason === '' ? '' : ` ${reason}`})`;
  const kind = CLOSE_REASON_ERRORS.find((candidate) => candidate.code === reason);
  if (kind !== undefined) return new kind(message);
  if (/^SWARMBEE_ERR_[A-Z0-9_]+$/.test(reason)) {
    return fromWire({ code: reason, message, retryable: false });
  }
  if (code === CLOSE_CODES.messageTooBig) return new FrameTooLargeError(message);
  if (code === CLOSE_CODES.unsupportedData || code === CLOSE_CODES.invalidPayload) {
    return new FrameInvalidError(message);
  }
  if (code === CLOSE_CODES.protocolError) return new MessageTypeUnknownError(message);
  if (code === CLOSE_CODES.policyViolation) return new AuthFailedError(message);
  return new ChannelClosedError(message);
}

/** Close codes an endpoint may put on the wire (RFC 6455 §7.4: 1004–1006 and 1015 are reserved). */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) ||
      (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999))
  );
}

/** The coded error for a failure `ws` reports on a socket (its own `WS_ERR_*` codes included). */
export function errorForSocketFailure(
  error: Error & { code?: string },
  peerName: string,
  maxFrameBytes: number,
): SwarmBeeError {
  if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return new FrameTooLargeError(`frame from ${peerName} exceeds maxFrameBytes ${maxFrameBytes}`, {
      cause: error,
    });
  }
  if (error.code?.startsWith('WS_ERR_')) {
    return new FrameInvalidError(`bad WebSocket frame from ${peerName}: ${error.message}`, {
      cause: error,
    });
  }
  return new ChannelClosedError(`connection to ${peerName} failed: ${error.message}`, {
    cause: error,
  });
}
