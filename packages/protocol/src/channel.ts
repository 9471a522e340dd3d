/**
 * A `Channel` is one authenticated WebSocket speaking one plane: typed messages in and
 * out, backpressure, request/reply, heartbeats and limits. `listen` and `connect` make
 * them; construct one yourself only around a WebSocket you have authenticated.
 *
 * Events (a typed EventEmitter):
 * - `message` (message): every received message that is not the reply to a pending
 *   `request`. Messages that arrive while no `message` listener is attached wait, in
 *   order, until one is (and the socket is paused meanwhile), so none is lost between
 *   `await connect()` and subscribing. A channel left without a listener stops reading,
 *   so its heartbeat ends it after `heartbeatTimeoutMs`.
 * - `drain` (): the send buffer fell below `highWaterMarkBytes` after `send` returned false.
 * - `close` ({code, reason, error}): exactly once; `error` is the coded cause when the
 *   close was abnormal (bad frame, peer timeout, frame too large, peer's error).
 * - `error` (error): the same cause, emitted only when someone listens, so an unhandled
 *   channel error can never crash the process.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  asSwarmBeeError,
  ChannelClosedError,
  FrameInvalidError,
  FrameTooLargeError,
  fromWire,
  InvalidArgumentError,
  PeerTimeoutError,
  SendQueueFullError,
  type SwarmBeeError,
} from '@swarmbee/core';
import { type RawData, WebSocket } from 'ws';
import {
  CLOSE_CODES,
  closeCodeFor,
  errorForClose,
  errorForSocketFailure,
  isSendableCloseCode,
} from './close-codes.js';
import { checkMessage, decode, encode, encodeParts, errorMessageFor } from './codec.js';
import {
  type ChannelCounters,
  channelCloseChannel,
  frameErrorChannel,
  type PeerInfo,
  peerTimeoutChannel,
  publish,
} from './diagnostics.js';
import { Heartbeat } from './heartbeat.js';
import {
  type ChannelPlane,
  type PlaneMessage,
  REPLY_TYPES,
  type ReplyTo,
  type RequestMessage,
} from './messages/index.js';
import {
  type ChannelOptions,
  type ResolvedChannelOptions,
  resolveChannelOptions,
} from './options.js';
import { PendingRequests } from './requests.js';
import { waitForEvent } from './signals.js';

export interface ChannelClose {
  /** WebSocket close code; 1006 when the socket died or was terminated. */
  code: number;
  reason: string;
  /** Why the channel ended, when it ended abnormally. */
  error?: SwarmBeeError | undefined;
}

export interface ChannelEvents<P extends ChannelPlane> {
  message: [message: PlaneMessage<P>];
  drain: [];
  close: [close: ChannelClose];
  error: [error: SwarmBeeError];
}

/** `open` → `closing` (close sent, waiting for the peer's) → `closed`. */
export type ChannelState = 'open' | 'closing' | 'closed';

export interface ChannelInit<P extends ChannelPlane> {
  plane: P;
  peer: PeerInfo;
  /** The TCP/TLS socket under the WebSocket: its bytes count as liveness while a long frame arrives. */
  socket?: Duplex | undefined;
  options?: ChannelOptions | undefined;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Time to wait for the reply, ms; default the channel's requestTimeoutMs. */
  timeoutMs?: number;
}

export class Channel<P extends ChannelPlane = ChannelPlane> extends EventEmitter<ChannelEvents<P>> {
  readonly plane: P;
  readonly peer: PeerInfo;
  readonly options: ResolvedChannelOptions;
  /**
   * Settles with the close, once the channel is closed.
   * @neverRejects
   */
  readonly closed: Promise<ChannelClose>;

  readonly #ws: WebSocket;
  readonly #socket: Duplex | undefined;
  readonly #heartbeat: Heartbeat;
  readonly #requests = new PendingRequests();
  readonly #counters: ChannelCounters = {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
  };
  readonly #inbox: PlaneMessage<P>[] = [];
  #state: ChannelState = 'open';
  #needDrain = false;
  /** Reading paused by {@link pause}: the consumer has more than it can take. */
  #held = false;
  /** Set when this end decides the channel must end because of an error. */
  #closeError: SwarmBeeError | undefined;
  /** The last connection-level `error` message from the peer: the likely reason it closes. */
  #peerError: SwarmBeeError | undefined;
  #closedLocally = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #resolveClosed!: (close: ChannelClose) => void;

  constructor(ws: WebSocket, init: ChannelInit<P>) {
    super();
    if (ws.readyState !== WebSocket.OPEN) throw new ChannelClosedError('the WebSocket is not open');
    this.plane = init.plane;
    this.peer = init.peer;
    this.options = resolveChannelOptions(init.options);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#ws = ws;
    this.#socket = init.socket;
    ws.binaryType = 'nodebuffer';
    this.#heartbeat = new Heartbeat({
      intervalMs: this.options.heartbeatIntervalMs,
      timeoutMs: this.options.heartbeatTimeoutMs,
      ping: () => ws.ping(),
      onSilence: (silentMs) => this.#peerWentSilent(silentMs),
    });
    ws.on('message', (data, isBinary) => this.#receive(data, isBinary));
    ws.on('close', (code, reason) => this.#finish(code, reason.toString()));
    ws.on('error', (error) => this.#socketFailed(error));
    ws.on('ping', this.#heartbeat.seen);
    ws.on('pong', this.#heartbeat.seen);
    this.#socket?.on('data', this.#heartbeat.seen);
    // 'newListener' is outside the typed event map; it fires before the listener is added.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' && this.#inbox.length > 0) queueMicrotask(() => this.#flushInbox());
    });
  }

  get state(): ChannelState {
    return this.#state;
  }

  /** Bytes accepted by `send` but not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  /** A snapshot of this channel's byte and frame counters (encoded message bytes). */
  get counters(): ChannelCounters {
    return { ...this.#counters };
  }

  /**
   * Queues one message. Returns false when the send buffer is at or past
   * `highWaterMarkBytes`: stop sending until `drain`. Throws ChannelClosedError when not
   * open, MessageSchemaError or MessageTypeUnknownError for a message the peer would
   * refuse (with `checkOutgoing`), FrameTooLargeError past `maxFrameBytes`, and a
   * retryable SendQueueFullError rather than buffer past `maxQueuedBytes`; the channel stays
   * open after all of these.
   */
  send(message: PlaneMessage<P>): boolean {
    if (this.#state !== 'open') {
      throw new ChannelClosedError(`channel to ${this.peer.name} is ${this.#state}`);
    }
    if (this.options.checkOutgoing) checkMessage(message, this.plane);
    const parts = encodeParts(message);
    let frameBytes = 0;
    for (const part of parts) frameBytes += part.byteLength;
    const { maxFrameBytes, maxQueuedBytes, highWaterMarkBytes } = this.options;
    if (frameBytes > maxFrameBytes) {
      throw new FrameTooLargeError(
        `${message.type} frame of ${frameBytes} bytes exceeds maxFrameBytes ${maxFrameBytes}`,
      );
    }
    const queued = this.#ws.bufferedAmount;
    if (queued + frameBytes > maxQueuedBytes) {
      throw new SendQueueFullError(
        `${queued} bytes already queued to ${this.peer.name}; ${frameBytes} more would pass maxQueuedBytes ${maxQueuedBytes}`,
      );
    }
    // A frame with tensors goes as WebSocket fragments: its envelope, then each tensor's
    // bytes where they lie, so nothing is copied into one buffer on the way out (the peer
    // reassembles the fragments into one aligned buffer, the hop's one copy).
    // Corked, the fragments leave in one writev: a write per fragment was the largest cost of
    // a small frame (an all-reduce part, a decode step's hidden state).
    const last = parts.length - 1;
    const socket = last > 0 && this.#socket?.writable ? this.#socket : undefined;
    socket?.cork();
    parts.forEach((part, i) => {
      this.#ws.send(
        part,
        { binary: true, fin: i === last },
        i === last ? this.#afterWrite : undefined,
      );
    });
    socket?.uncork();
    this.#counters.framesSent += 1;
    this.#counters.bytesSent += frameBytes;
    if (this.#ws.bufferedAmount >= highWaterMarkBytes) this.#needDrain = true;
    return !this.#needDrain;
  }

  /** Sends once the buffer is below the high-water mark: the producer waits for room. */
  async write(message: PlaneMessage<P>, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.waitForDrain(options);
    this.send(message);
  }

  /** Resolves once the send buffer is below the high-water mark (at once if it is). */
  async waitForDrain(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#needDrain) return;
    if (this.#state === 'closed') {
      throw new ChannelClosedError(`channel to ${this.peer.name} is closed`);
    }
    await waitForEvent(this as EventEmitter, 'drain', {
      signal: options.signal,
      what: `drain of the channel to ${this.peer.name}`,
    });
  }

  /**
   * Sends a request and resolves with its reply (matched by `requestId`); an `error`
   * reply rejects with its coded error. Rejects with TimeoutError when no reply comes in
   * time, AbortedError on abort, the send's own error when sending fails, and with the close's error (or ChannelClosedError) if the channel closes first.
   */
  async request<T extends RequestMessage & PlaneMessage<P>>(
    message: T,
    options: RequestOptions = {},
  ): Promise<ReplyTo<T>> {
    const replyType = REPLY_TYPES[message.type];
    if (this.#state !== 'open') {
      throw new ChannelClosedError(`channel to ${this.peer.name} is ${this.#state}`);
    }
    const reply = await this.#requests.exchange(
      message.requestId,
      message.type,
      replyType,
      { timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs, signal: options.signal },
      () => this.send(message),
    );
    return reply as ReplyTo<T>;
  }

  /**
   * Starts the closing handshake; `closed` settles when it is done, or after
   * `closeTimeoutMs` if the peer does not answer. `code` is 1000–1003, 1007–1014 or
   * 3000–4999; `reason` at most 123 bytes of UTF-8.
   */
  close(code: number = CLOSE_CODES.normal, reason = ''): void {
    if (!isSendableCloseCode(code))
      throw new InvalidArgumentError(`${code} is not a close code to send`);
    if (Buffer.byteLength(reason) > 123) {
      throw new InvalidArgumentError('a close reason must fit in 123 bytes');
    }
    if (this.#state !== 'open') return;
    this.#closedLocally = true;
    this.#beginClose(code, reason);
  }

  /** Drops the connection at once, without a closing handshake. */
  terminate(): void {
    this.#closedLocally = true;
    this.#ws.terminate();
  }

  /**
   * Stops reading from the peer until {@link resume}: the consumer (a disk slower than
   * the link) has as much in hand as it may buffer. The socket's receive window fills and
   * the peer's `write` waits for drain, so nothing piles up in memory on either side.
   * Heartbeat silence is not judged meanwhile (the peer's pongs wait unread).
   */
  pause(): void {
    if (this.#held || this.#state === 'closed') return;
    this.#held = true;
    this.#heartbeat.hold(true);
    this.#ws.pause();
  }

  /** Reads again after {@link pause}. */
  resume(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#heartbeat.hold(false);
    if (this.#inbox.length === 0 && this.#state !== 'closed') this.#ws.resume();
  }

  /** Whether reading is paused by {@link pause}. */
  get paused(): boolean {
    return this.#held;
  }

  readonly #afterWrite = (error?: Error): void => {
    if (error !== undefined && error !== null) return;
    if (this.#needDrain && this.#ws.bufferedAmount < this.options.highWaterMarkBytes) {
      this.#needDrain = false;
      this.emit('drain');
    }
  };

  #receive(data: RawData, isBinary: boolean): void {
    // After a bad frame nothing more from that peer is trusted; after a graceful close()
    // frames the peer sent before it saw our close frame are still delivered.
    if (this.#state === 'closed' || this.#closeError !== undefined) return;
    if (!isBinary) {
      this.#rejectFrame(
        new FrameInvalidError('text frames are not part of the protocol'),
        CLOSE_CODES.unsupportedData,
      );
      return;
    }
    const bytes = data as Buffer;
    this.#counters.framesReceived += 1;
    this.#counters.bytesReceived += bytes.byteLength;
    let message: PlaneMessage<P>;
    try {
      message = decode(bytes, {
        plane: this.plane,
        maxFrameBytes: this.options.maxFrameBytes,
      }) as PlaneMessage<P>;
    } catch (error) {
      this.#rejectFrame(asSwarmBeeError(error));
      return;
    }
    if (this.#requests.settle(message)) return;
    if (
      message.type === 'error' &&
      message.requestId === undefined &&
      message.batchId === undefined
    ) {
      this.#peerError = fromWire(message);
    }
    this.#deliver(message);
  }

  #deliver(message: PlaneMessage<P>): void {
    const listening = this.listenerCount('message') > 0;
    // Behind messages still waiting for a flush, a new one waits too: order is kept.
    if (listening && this.#inbox.length === 0) {
      this.emit('message', message);
      return;
    }
    this.#inbox.push(message);
    if (!listening) this.#ws.pause();
  }

  #flushInbox(): void {
    while (this.#inbox.length > 0 && this.listenerCount('message') > 0) {
      this.emit('message', this.#inbox.shift()!);
    }
    if (this.#inbox.length === 0 && this.#state === 'open' && !this.#held) this.#ws.resume();
  }

  /** A bad frame: tell the peer why, then close. Never throws, never touches other connections. */
  #rejectFrame(error: SwarmBeeError, code = closeCodeFor(error)): void {
    publish(frameErrorChannel, () => ({
      peer: this.peer,
      code: error.code,
      message: error.message,
    }));
    this.#closeError ??= error;
    try {
      this.#ws.send(encode(errorMessageFor(error)));
    } catch {
      // The socket is already going; the close code and reason still carry the error code.
    }
    this.#beginClose(code, error.code);
  }

  #beginClose(code: number, reason: string): void {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#heartbeat.stop();
    this.#ws.close(code, reason);
    // ws waits 30 s for the peer's close frame; a stalled peer should not hold us that long.
    this.#closeTimer = setTimeout(() => this.#ws.terminate(), this.options.closeTimeoutMs);
    this.#closeTimer.unref();
  }

  #peerWentSilent(silentMs: number): void {
    if (this.#state === 'closed') return;
    publish(peerTimeoutChannel, () => ({ peer: this.peer, silentMs: Math.round(silentMs) }));
    this.#closeError ??= new PeerTimeoutError(
      `${this.peer.name} sent nothing for ${Math.round(silentMs)} ms (heartbeatTimeoutMs ${this.options.heartbeatTimeoutMs})`,
    );
    this.#ws.terminate();
  }

  #socketFailed(error: Error & { code?: string }): void {
    // ws reports protocol violations it detects itself (oversized or malformed frames)
    // here, then closes the socket; 'close' follows and ends the channel.
    const coded = errorForSocketFailure(error, this.peer.name, this.options.maxFrameBytes);
    if (coded.code !== ChannelClosedError.code) {
      publish(frameErrorChannel, () => ({
        peer: this.peer,
        code: coded.code,
        message: coded.message,
      }));
    }
    this.#closeError ??= coded;
  }

  #causeOfClose(code: number, reason: string): SwarmBeeError | undefined {
    if (this.#closeError !== undefined) return this.#closeError;
    if (code === CLOSE_CODES.normal || code === CLOSE_CODES.goingAway) return undefined;
    // This end asked to close; if the peer never answered and we forced it, that is not a fault.
    if (this.#closedLocally) return undefined;
    return this.#peerError ?? errorForClose(code, reason);
  }

  #finish(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#heartbeat.stop();
    clearTimeout(this.#closeTimer);
    this.#socket?.off('data', this.#heartbeat.seen);
    const error = this.#causeOfClose(code, reason);
    this.#requests.rejectAll(
      error ?? new ChannelClosedError(`channel to ${this.peer.name} closed before the reply`),
    );
    const close: ChannelClose = { code, reason, error };
    publish(channelCloseChannel, () => ({
      peer: this.peer,
      code,
      reason,
      errorCode: error?.code,
      counters: this.counters,
    }));
    this.emit('close', close);
    if (error !== undefined && this.listenerCount('error') > 0) this.emit('error', error);
    this.#resolveClosed(close);
  }
}
