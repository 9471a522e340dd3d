/**
 * The user-space link shaper: a TCP echo through it takes the link's delay each way (a
 * fraction of a millisecond as well as several), its bandwidth paces bulk bytes, and the
 * bytes arrive whole and in order.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import t from 'tap';
import { ShapingProxy } from '../src/link-shaper.js';

/** Round trips timed per delay. */
const ROUND_TRIPS = 40;

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.pipe(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

async function dial(port: number): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

/** Sends `bytes` and resolves once as many have come back, with the elapsed ms and the bytes. */
async function echo(socket: Socket, bytes: Buffer): Promise<{ ms: number; back: Buffer }> {
  const begun = performance.now();
  const parts: Buffer[] = [];
  let received = 0;
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      parts.push(chunk);
      received += chunk.length;
      if (received >= bytes.length) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.write(bytes);
  });
  return { ms: performance.now() - begun, back: Buffer.concat(parts) };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

t.test('a round trip takes the link delay each way: 0.2 ms as well as 2 ms', async (t) => {
  const { server, port } = await echoServer();
  t.teardown(() => server.close());
  for (const delayMs of [0.2, 2]) {
    const proxy = await ShapingProxy.start(
      { host: '127.0.0.1', port },
      { delayMs, bytesPerSecond: 125e6 },
    );
    const socket = await dial(proxy.port);
    const times: number[] = [];
    for (let i = 0; i < ROUND_TRIPS; i++) times.push((await echo(socket, Buffer.alloc(64, i))).ms);
    socket.destroy();
    await proxy.close();
    const fastest = Math.min(...times);
    // Never faster than the link, and less than a timer tick late each way: a 0.2 ms link is not
    // a 1 ms one (waits round up to whole milliseconds on timers). The fastest round trip says
    // so; the median also carries the machine's scheduling noise (tests run side by side).
    t.ok(
      fastest >= 2 * delayMs && fastest < 2 * delayMs + 1.5,
      `${delayMs} ms link: fastest round trip ${fastest.toFixed(2)} ms (median ${median(times).toFixed(2)} ms)`,
    );
  }
});

t.test('bandwidth paces bulk bytes, which arrive whole and in order', async (t) => {
  const { server, port } = await echoServer();
  t.teardown(() => server.close());
  const bytesPerSecond = 20e6;
  const proxy = await ShapingProxy.start(
    { host: '127.0.0.1', port },
    { delayMs: 0.5, bytesPerSecond },
  );
  const socket = await dial(proxy.port);
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 8)) & 0xff;
  const { ms, back } = await echo(socket, payload);
  socket.destroy();
  await proxy.close();
  t.ok(back.equals(payload), 'the echo is the bytes sent, in order');
  // Each direction is paced: at least the payload's time on the wire one way.
  t.ok(
    ms >= (payload.length / bytesPerSecond) * 1000,
    `1 MiB at 20 MB/s each way took ${ms.toFixed(0)} ms`,
  );
});
