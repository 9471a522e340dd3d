import { once } from 'node:events';
import {
  AbortedError,
  ChannelClosedError,
  FrameInvalidError,
  FrameTooLargeError,
  MessageSchemaError,
  MessageTypeUnknownError,
  PeerTimeoutError,
  ProtocolVersionError,
  SendQueueFullError,
  ShardInvalidError,
  TimeoutError,
} from '@swarmbee/core';
import {
  type Channel,
  type ChannelClose,
  CLOSE_CODES,
  DIAGNOSTICS,
  encode,
  type FrameErrorDiagnostic,
  type PeerTimeoutDiagnostic,
  PROTOCOL_VERSION,
  type ServerChannel,
} from '@swarmbee/protocol';
import { Packr } from 'msgpackr';
import t, { type Test } from 'tap';
import {
  collect,
  nextFrame,
  rawHandshake,
  startClient,
  startServer,
  within,
} from './helpers/net.js';

const SHA = 'e'.repeat(64);
const chunk = (bytes: number) =>
  ({
    type: 'shard.chunk',
    shardId: SHA,
    file: 'w.bin',
    offset: 0,
    data: new Uint8Array(bytes),
    sha256: SHA,
  }) as const;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** A control-plane server whose channels answer stats requests (and fail profile requests). */
async function statsServer(t: Test) {
  const channels: ServerChannel[] = [];
  const server = await startServer(t, {}, (channel) => {
    channels.push(channel);
    if (channel.plane !== 'control') return;
    channel.on('message', (message) => {
      if (message.type === 'stats.request') {
        channel.send({ type: 'stats', requestId: message.requestId, stats: { framesSeen: 1 } });
      } else if (message.type === 'profile.request' && message.kind === 'fail') {
        const error = new ShardInvalidError('no shard loaded', { stage: 2 });
        channel.send({ type: 'error', requestId: message.requestId, ...error.toWire() });
      }
      // other profile requests are never answered: the client times out
    });
  });
  return { server, channels };
}

t.test('request/reply: a reply is matched to its request by requestId', async (t) => {
  const { server } = await statsServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  const [a, b] = await Promise.all([
    client.request({ type: 'stats.request', requestId: 'a' }),
    client.request({ type: 'stats.request', requestId: 'b' }),
  ]);
  t.equal(a.type, 'stats');
  t.equal(a.requestId, 'a');
  t.equal(b.requestId, 'b');
  t.same(a.stats, { framesSeen: 1 });
});

t.test('request/reply: an error reply rejects with the coded error', async (t) => {
  const { server } = await statsServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  const error = await client
    .request({ type: 'profile.request', requestId: 'p1', kind: 'fail', params: {} })
    .catch((e: unknown) => e);
  t.equal((error as ShardInvalidError).code, ShardInvalidError.code);
  t.ok(error instanceof ShardInvalidError, 'rebuilt as its class');
  t.equal((error as ShardInvalidError).stage, 2);
  t.equal(client.state, 'open', 'a failed request does not end the channel');
});

t.test(
  'request/reply: a timeout rejects with TimeoutError, an abort with AbortedError, and both free the request',
  async (t) => {
    const { server } = await statsServer(t);
    const client = await startClient(t, server.url, { role: 'worker' });
    const started = Date.now();
    const timedOut = await client
      .request(
        { type: 'profile.request', requestId: 'slow', kind: 'compute', params: {} },
        { timeoutMs: 100 },
      )
      .catch((e: unknown) => e);
    t.equal((timedOut as TimeoutError).code, TimeoutError.code);
    t.equal((timedOut as TimeoutError).retryable, true);
    t.ok(Date.now() - started < 2_000);
    const controller = new AbortController();
    const pending = client.request(
      { type: 'profile.request', requestId: 'slow', kind: 'compute', params: {} },
      { signal: controller.signal },
    );
    controller.abort();
    t.equal(((await pending.catch((e: unknown) => e)) as AbortedError).code, AbortedError.code);
    // The id is free again once the earlier request settled.
    const again = await client.request({ type: 'stats.request', requestId: 'slow' });
    t.equal(again.requestId, 'slow');
  },
);

t.test('request/reply: closing the channel rejects pending requests', async (t) => {
  const { server, channels } = await statsServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  const pending = client.request({
    type: 'profile.request',
    requestId: 'x',
    kind: 'compute',
    params: {},
  });
  await within(
    (async () => {
      while (channels.length === 0) await new Promise((r) => setTimeout(r, 5));
    })(),
    2_000,
    'server channel',
  );
  channels[0]!.close(CLOSE_CODES.goingAway, 'bye');
  const error = await pending.catch((e: unknown) => e);
  t.equal((error as ChannelClosedError).code, ChannelClosedError.code);
  t.equal(
    codeOf(() => client.send({ type: 'drain' })),
    ChannelClosedError.code,
    'send after close throws',
  );
});

t.test('messages sent right after the welcome wait until a listener is attached', async (t) => {
  const server = await startServer(t, {}, (channel) => {
    if (channel.plane !== 'data') return;
    for (let i = 0; i < 3; i++) channel.send({ type: 'release', seqIds: [`s${i}`] });
  });
  const client = await startClient(t, server.url, { role: 'stage' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const seen: string[] = [];
  const all = new Promise<void>((resolve) => {
    client.on('message', (message) => {
      if (message.type === 'release') seen.push(message.seqIds[0]!);
      if (seen.length === 3) resolve();
    });
  });
  await within(all, 2_000, 'buffered messages');
  t.same(seen, ['s0', 's1', 's2']);
});

t.test('counters: bytes and frames agree on both ends', async (t) => {
  const { server, channels } = await statsServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  for (let i = 0; i < 5; i++) await client.request({ type: 'stats.request', requestId: `c${i}` });
  const serverSide = channels[0]!;
  t.equal(client.counters.framesSent, 5);
  t.equal(serverSide.counters.framesReceived, 5);
  t.equal(serverSide.counters.bytesReceived, client.counters.bytesSent);
  t.equal(client.counters.bytesReceived, serverSide.counters.bytesSent);
});

t.test('close: a normal close ends both ends without an error', async (t) => {
  const { server, channels } = await statsServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  await client.request({ type: 'stats.request', requestId: 'r' });
  client.close();
  const [clientClose, serverClose] = await within(
    Promise.all([client.closed, channels[0]!.closed]),
    3_000,
    'close',
  );
  t.equal(clientClose.code, CLOSE_CODES.normal);
  t.equal(clientClose.error, undefined);
  t.equal(serverClose.code, CLOSE_CODES.normal);
  t.equal(serverClose.error, undefined);
});

t.test('backpressure: send returns false past the high-water mark, then drain fires', async (t) => {
  let serverChannel: ServerChannel | undefined;
  const server = await startServer(t, {}, (channel) => {
    // No 'message' listener yet: the channel holds what arrives and pauses the socket.
    serverChannel = channel;
  });
  const client = await startClient(t, server.url, {
    role: 'worker',
    highWaterMarkBytes: 1024 * 1024,
  });
  let accepted = true;
  let sends = 0;
  while (accepted && sends < 400) {
    accepted = client.send(chunk(256 * 1024));
    sends += 1;
  }
  t.equal(accepted, false, `send returned false after ${sends} frames`);
  t.ok(client.bufferedBytes >= 1024 * 1024, `${client.bufferedBytes} bytes buffered`);
  const drained = once(client, 'drain');
  let received = 0;
  serverChannel!.on('message', () => {
    received += 1;
  });
  await within(drained, 5_000, 'drain');
  t.ok(client.bufferedBytes < 1024 * 1024, 'below the mark after drain');
  await client.waitForDrain();
  await client.write({ type: 'drain' });
  await within(
    (async () => {
      while (received < sends + 1) await new Promise((r) => setTimeout(r, 10));
    })(),
    5_000,
    'all frames received',
  );
  t.equal(received, sends + 1, 'every frame arrived, in one piece');
});

t.test('maxQueuedBytes: sending past it throws a retryable SendQueueFullError', async (t) => {
  let serverChannel: ServerChannel | undefined;
  const server = await startServer(t, {}, (channel) => {
    serverChannel = channel;
  });
  const client = await startClient(t, server.url, {
    role: 'worker',
    highWaterMarkBytes: 256 * 1024,
    maxFrameBytes: 1024 * 1024,
    maxQueuedBytes: 2 * 1024 * 1024,
  });
  let error: unknown;
  for (let sent = 0; sent < 400 && error === undefined; sent++) {
    try {
      client.send(chunk(512 * 1024));
    } catch (caught) {
      error = caught;
    }
  }
  t.equal((error as SendQueueFullError)?.code, SendQueueFullError.code);
  t.equal((error as SendQueueFullError).retryable, true);
  t.ok(client.bufferedBytes <= 2 * 1024 * 1024, 'never buffered past the limit');
  t.equal(client.state, 'open', 'the channel stays open');
  serverChannel!.on('message', () => {});
  await within(client.waitForDrain(), 5_000, 'drain');
  t.equal(client.send({ type: 'drain' }), true, 'sending works again after drain');
});

t.test('send refuses a frame over its own maxFrameBytes and stays open', async (t) => {
  const server = await startServer(t);
  const client = await startClient(t, server.url, { role: 'worker', maxFrameBytes: 64 * 1024 });
  t.equal(
    codeOf(() => client.send(chunk(100 * 1024))),
    FrameTooLargeError.code,
  );
  t.equal(client.state, 'open');
});

t.test(
  'heartbeat: a peer that stops answering pings is terminated with PeerTimeoutError',
  async (t) => {
    const timeouts = collect<PeerTimeoutDiagnostic>(t, DIAGNOSTICS.peerTimeout);
    let serverChannel: ServerChannel | undefined;
    const server = await startServer(
      t,
      { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 },
      (channel) => {
        serverChannel = channel;
        channel.on('message', () => {});
      },
    );
    const peer = await rawHandshake(t, server.url, { name: 'sleepy' });
    await new Promise((resolve) => setTimeout(resolve, 350));
    t.equal(serverChannel?.state, 'open', 'alive while it answers pings');
    peer.ws.pause(); // stops reading: pings go unanswered, as with a stalled process
    const started = Date.now();
    const close = (await within(serverChannel!.closed, 3_000, 'timeout close')) as ChannelClose;
    t.equal(close.error?.code, PeerTimeoutError.code);
    t.equal(close.code, CLOSE_CODES.abnormal);
    t.ok(Date.now() - started < 1_500, `detected in ${Date.now() - started} ms`);
    t.equal(timeouts.length, 1);
    t.equal(timeouts[0]?.peer.name, 'sleepy');
  },
);

t.test('heartbeat: both ends stay up across several timeout periods while healthy', async (t) => {
  let serverChannel: ServerChannel | undefined;
  const options = { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 150 };
  const server = await startServer(t, options, (channel) => {
    serverChannel = channel;
  });
  const client = await startClient(t, server.url, { role: 'stage', ...options });
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.equal(client.state, 'open');
  t.equal(serverChannel?.state, 'open');
});

t.test('BAD FRAME - oversized frame: closed with 1009, the server keeps serving', async (t) => {
  const frameErrors = collect<FrameErrorDiagnostic>(t, DIAGNOSTICS.frameError);
  const serverCloses: Promise<ChannelClose>[] = [];
  const server = await startServer(t, { maxFrameBytes: 64 * 1024 }, (channel) => {
    serverCloses.push(channel.closed);
    if (channel.plane === 'control') {
      channel.on('message', (message) => {
        if (message.type === 'stats.request')
          channel.send({ type: 'stats', requestId: message.requestId, stats: {} });
      });
    }
  });
  const big = await startClient(t, server.url, { role: 'worker', maxFrameBytes: 1024 * 1024 });
  t.equal(big.send(chunk(100 * 1024)), true);
  const close = await within(big.closed, 3_000, 'oversized close');
  t.equal(close.code, CLOSE_CODES.messageTooBig);
  t.equal(close.error?.code, FrameTooLargeError.code);
  const serverClose = await within(serverCloses[0]!, 3_000, 'server close');
  t.equal(serverClose.error?.code, FrameTooLargeError.code);
  t.ok(
    frameErrors.some((event) => event.code === FrameTooLargeError.code),
    'published as a frame error',
  );
  const next = await startClient(t, server.url, { role: 'worker' });
  const reply = await next.request({ type: 'stats.request', requestId: 'still-up' });
  t.equal(reply.requestId, 'still-up', 'another connection is served normally');
});

const foreign = new Packr({ useRecords: false });
const badFrames: [string, (ws: import('ws').WebSocket) => void, string, number][] = [
  [
    'text frame',
    (ws) => ws.send('{"type":"drain"}'),
    FrameInvalidError.code,
    CLOSE_CODES.unsupportedData,
  ],
  [
    'undecodable bytes',
    (ws) => ws.send(Buffer.from([0xc1, 0xff, 0x00])),
    FrameInvalidError.code,
    CLOSE_CODES.invalidPayload,
  ],
  [
    'unknown message type',
    (ws) => ws.send(foreign.pack({ v: PROTOCOL_VERSION, type: 'teleport' })),
    MessageTypeUnknownError.code,
    CLOSE_CODES.protocolError,
  ],
  [
    'control message on the data plane',
    (ws) => ws.send(encode({ type: 'drain' })),
    MessageTypeUnknownError.code,
    CLOSE_CODES.protocolError,
  ],
  [
    'wrong protocol version',
    (ws) => ws.send(foreign.pack({ v: 99, type: 'release', seqIds: [] })),
    ProtocolVersionError.code,
    CLOSE_CODES.protocolError,
  ],
  [
    'schema violation',
    (ws) => ws.send(foreign.pack({ v: PROTOCOL_VERSION, type: 'release', seqIds: 'all' })),
    MessageSchemaError.code,
    CLOSE_CODES.invalidPayload,
  ],
];

for (const [name, sendBad, code, closeCode] of badFrames) {
  t.test(`BAD FRAME - ${name}: error reply with the code, then close ${closeCode}`, async (t) => {
    const serverCloses: Promise<ChannelClose>[] = [];
    const server = await startServer(t, {}, (channel: ServerChannel) => {
      serverCloses.push(channel.closed);
      (channel as Channel).on('message', () => {});
    });
    const peer = await rawHandshake(t, server.url, { role: 'stage' });
    const reply = nextFrame(peer.ws);
    sendBad(peer.ws);
    const error = await reply;
    t.equal(error.type, 'error');
    t.equal(error.type === 'error' && error.code, code);
    t.equal(error.type === 'error' && error.retryable, false);
    const closed = await within(peer.closed, 3_000, 'close');
    t.equal(closed.code, closeCode);
    t.equal(closed.reason, code, 'the close reason names the error code');
    t.equal((await serverCloses[0]!).error?.code, code);
  });
}

t.test(
  'send checks outgoing messages: a malformed one throws here and the channel stays open',
  async (t) => {
    const server = await startServer(t);
    const worker = await startClient(t, server.url, { role: 'worker' });
    t.equal(
      codeOf(() =>
        worker.send({ type: 'stats', requestId: 'r', stats: { latencyMs: Number.NaN } }),
      ),
      MessageSchemaError.code,
    );
    const stage = await startClient(t, server.url, { role: 'stage' });
    t.equal(
      codeOf(() => stage.send({ type: 'drain' } as unknown as Parameters<typeof stage.send>[0])),
      MessageTypeUnknownError.code,
      'a control message on a data channel',
    );
    t.equal(worker.state, 'open');
    t.equal(stage.state, 'open');
    t.equal(worker.counters.framesSent, 0, 'nothing reached the wire');
  },
);

t.test('listen: aborting its signal closes the server and its channels', async (t) => {
  const controller = new AbortController();
  const server = await startServer(t, { signal: controller.signal });
  const client = await startClient(t, server.url, { role: 'worker' });
  controller.abort();
  const close = await within(client.closed, 3_000, 'server close');
  t.equal(close.code, CLOSE_CODES.goingAway);
  t.equal(close.error, undefined, 'going away is not an error');
});

t.test(
  'a throwing or rejecting onChannel closes that channel with 1011; the server carries on',
  async (t) => {
    let calls = 0;
    // biome-ignore lint/nursery/noMisusedPromises: onChannel may return a promise; a rejecting one is what this test feeds it
    const server = await startServer(t, {}, async (channel) => {
      calls += 1;
      if (calls === 1) throw new Error('handler bug');
      if (calls === 2) {
        await Promise.resolve();
        throw new Error('async handler bug');
      }
      if (channel.plane === 'control') {
        channel.on('message', (message) => {
          if (message.type === 'stats.request')
            channel.send({ type: 'stats', requestId: message.requestId, stats: {} });
        });
      }
    });
    for (let i = 0; i < 2; i++) {
      const doomed = await startClient(t, server.url, { role: 'worker' });
      const close = await within(doomed.closed, 3_000, 'internal-error close');
      t.equal(close.code, CLOSE_CODES.internalError);
    }
    const fine = await startClient(t, server.url, { role: 'worker' });
    t.equal((await fine.request({ type: 'stats.request', requestId: 'ok' })).requestId, 'ok');
  },
);

t.test('close refuses reserved codes and oversized reasons', async (t) => {
  const server = await startServer(t);
  const client = await startClient(t, server.url, { role: 'worker' });
  t.equal(
    codeOf(() => client.close(1006)),
    'SWARMBEE_ERR_INVALID_ARGUMENT',
  );
  t.equal(
    codeOf(() => client.close(1000, 'x'.repeat(124))),
    'SWARMBEE_ERR_INVALID_ARGUMENT',
  );
  t.equal(client.state, 'open');
});

t.test(
  'server close waits for a silent peer only until closeTimeoutMs, or not at all when aborted',
  async (t) => {
    const server = await startServer(t, { closeTimeoutMs: 300 }, (channel) => {
      channel.on('message', () => {});
    });
    const peer = await rawHandshake(t, server.url, { role: 'stage' });
    peer.ws.pause(); // will never answer the close frame
    let started = Date.now();
    await within(server.close(), 3_000, 'close with a silent peer');
    t.ok(Date.now() - started >= 250, `waited ${Date.now() - started} ms for the peer`);

    const second = await startServer(t, {}, (channel) => {
      channel.on('message', () => {});
    });
    const other = await rawHandshake(t, second.url, { role: 'stage' });
    other.ws.pause();
    started = Date.now();
    await within(second.close({ signal: AbortSignal.abort() }), 3_000, 'aborted close');
    t.ok(Date.now() - started < 1_000, `cut at once (${Date.now() - started} ms)`);
  },
);
