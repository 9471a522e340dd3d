/**
 * A user-space link shaper for benchmarks and tests: a TCP proxy on loopback that
 * holds every byte for a one-way delay and paces it at a bandwidth, in both
 * directions. The kernels here have no netem; this emulates a slow edge link
 * between two processes on one machine. Not for production links.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { InvalidArgumentError } from '@swarmbee/core';
import type { Channel } from './channel.js';
import { type ConnectOptions, connect } from './client.js';
import type { PlaneOfRole, Role } from './messages/index.js';

export interface LinkShape {
  /** One-way delay added to every byte, ms. */
  delayMs: number;
  /** Bandwidth, bytes per second; Infinity for no limit. */
  bytesPerSecond: number;
}

/** Bytes a direction may hold in flight before it stops reading its source. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export function checkShape(shape: LinkShape): void {
  if (!(shape.delayMs >= 0) || !(shape.bytesPerSecond > 0)) {
    throw new InvalidArgumentError(
      `a link shape needs delay >= 0 ms and bandwidth > 0, got ${shape.delayMs} ms, ${shape.bytesPerSecond} B/s`,
    );
  }
}

/**
 * Timers wait whole milliseconds of the loop's clock (a wait under 1 ms becomes 1 ms or more),
 * so a delivery closer than this is awaited by checking the clock once per event-loop turn
 * instead: a 0.2 ms link delays by about 0.2 ms, not by a timer tick. The checking spends CPU
 * only while a chunk is that close to its arrival.
 */
const POLL_WITHIN_MS = 1.5;

/**
 * Calls `deliver` at `at` (performance.now() time): by a timer that wakes a little early,
 * then once per event-loop turn. Returns how to cancel it.
 */
function wakeAt(at: number, deliver: () => void): () => void {
  const waitMs = at - performance.now();
  if (waitMs > POLL_WITHIN_MS) {
    const timer = setTimeout(deliver, Math.floor(waitMs - 1));
    return () => clearTimeout(timer);
  }
  const turn = setImmediate(deliver);
  return () => clearImmediate(turn);
}

/**
 * One direction of a shaped link: bytes leave in order, paced, then arrive after the delay.
 * One wake-up at a time drains a FIFO of chunks: a timer per chunk could fire out of order
 * (timers round to the loop's millisecond), and reordered TCP bytes are a corrupted stream.
 */
function shapeDirection(from: Socket, to: Socket, shape: LinkShape): void {
  let freeAt = 0;
  let queued = 0;
  const inFlight: { chunk: Buffer; arriveAt: number }[] = [];
  let cancel: (() => void) | undefined;
  let ended = false;
  // A byte counts as queued until the receiving socket has taken it: a receiver that
  // stops reading holds the sender back, as on a real link, instead of filling this proxy.
  const taken = (bytes: number) => () => {
    queued -= bytes;
    if (queued <= MAX_QUEUED_BYTES && from.isPaused()) from.resume();
  };
  const deliver = () => {
    cancel = undefined;
    const now = performance.now();
    while (inFlight.length > 0 && inFlight[0]!.arriveAt <= now) {
      const { chunk } = inFlight.shift()!;
      if (to.destroyed) taken(chunk.length)();
      else to.write(chunk, taken(chunk.length));
    }
    if (inFlight.length > 0) cancel = wakeAt(inFlight[0]!.arriveAt, deliver);
    else if (ended) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    const now = performance.now();
    // Serialisation at the link's bandwidth, then propagation.
    freeAt = Math.max(now, freeAt) + (chunk.length * 1000) / shape.bytesPerSecond;
    inFlight.push({ chunk, arriveAt: freeAt + shape.delayMs });
    queued += chunk.length;
    if (queued > MAX_QUEUED_BYTES) from.pause();
    cancel ??= wakeAt(freeAt + shape.delayMs, deliver);
  });
  from.on('end', () => {
    ended = true;
    cancel ??= wakeAt(0, deliver);
  });
  from.on('error', () => {
    cancel?.();
    to.destroy();
  });
}

export class ShapingProxy {
  private constructor(
    private readonly server: Server,
    /** Loopback port to connect to instead of the target. */
    readonly port: number,
  ) {}

  /** Starts a proxy on 127.0.0.1:0 that shapes traffic to and from `target`. */
  static async start(
    target: { host: string; port: number },
    shape: LinkShape,
  ): Promise<ShapingProxy> {
    checkShape(shape);
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = tcpConnect(target.port, target.host);
      for (const socket of [client, upstream]) {
        socket.setNoDelay(true);
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      }
      shapeDirection(client, upstream, shape);
      shapeDirection(upstream, client, shape);
    });
    server.on('close', () => {
      for (const socket of sockets) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return new ShapingProxy(server, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * `connect` through a shaping proxy of its own when `shape` is given (plain ws:// only);
 * the proxy closes with the channel.
 */
export async function connectShaped<R extends Role>(
  url: string,
  options: ConnectOptions<R>,
  shape?: LinkShape,
): Promise<Channel<PlaneOfRole<R>>> {
  if (!shape) return connect(url, options);
  const target = new URL(url);
  if (target.protocol !== 'ws:')
    throw new InvalidArgumentError(`link shaping works on ws:// links only, not ${url}`);
  const proxy = await ShapingProxy.start(
    { host: target.hostname.replace(/^\[|\]$/g, ''), port: Number(target.port) },
    shape,
  );
  try {
    const channel = await connect(`ws://127.0.0.1:${proxy.port}${target.pathname}`, options);
    channel.once('close', () => void proxy.close());
    return channel;
  } catch (error) {
    await proxy.close();
    throw error;
  }
}
