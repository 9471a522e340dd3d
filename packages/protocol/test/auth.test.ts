import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AbortedError,
  AuthFailedError,
  ConnectFailedError,
  HandshakeTimeoutError,
  ProtocolVersionError,
} from '@swarmbee/core';
import {
  type AuthFailedDiagnostic,
  CLOSE_CODES,
  connect,
  DIAGNOSTICS,
  decode,
  encode,
  PROTOCOL_VERSION,
  type ServerChannel,
} from '@swarmbee/protocol';
import t, { type Test } from 'tap';
import { WebSocket, WebSocketServer } from 'ws';
import {
  collect,
  nextFrame,
  rawHandshake,
  startClient,
  startRecordingProxy,
  startServer,
  TOKEN,
  within,
} from './helpers/net.js';

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message?: string };
  }
  throw new Error('expected a rejection');
}

/** A control-plane server that echoes stats requests, remembering every channel. */
async function echoServer(t: Test, options: Parameters<typeof startServer>[1] = {}) {
  const channels: ServerChannel[] = [];
  const server = await startServer(t, options, (channel) => {
    channels.push(channel);
    if (channel.plane !== 'control') return;
    channel.on('message', (message) => {
      if (message.type === 'stats.request') {
        channel.send({ type: 'stats', requestId: message.requestId, stats: { ok: 1 } });
      }
    });
  });
  return { server, channels };
}

t.test('right token: both ends prove it and the channel carries role and name', async (t) => {
  const { server, channels } = await echoServer(t);
  t.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  const client = await startClient(t, server.url, { role: 'worker', name: 'pi-1' });
  t.equal(client.plane, 'control');
  const reply = await client.request({ type: 'stats.request', requestId: 'hi' });
  t.same(reply.stats, { ok: 1 });
  t.equal(channels.length, 1);
  t.equal(channels[0]!.peer.role, 'worker');
  t.equal(channels[0]!.peer.name, 'pi-1');
  t.equal(channels[0]!.peer.address, '127.0.0.1');
  const stage = await startClient(t, server.url, { role: 'stage', name: 'stage-1' });
  t.equal(stage.plane, 'data', 'role stage speaks the data plane');
});

t.test('wrong token: refused with AUTH_FAILED, published, never handed to the app', async (t) => {
  const failures = collect<AuthFailedDiagnostic>(t, DIAGNOSTICS.authFailed);
  const { server, channels } = await echoServer(t);
  const error = await rejection(
    connect(server.url, { token: 'not-the-token', role: 'worker', name: 'mallory' }),
  );
  t.equal(error.code, AuthFailedError.code);
  t.equal(channels.length, 0);
  t.equal(failures.length, 1);
  t.equal(failures[0]?.code, AuthFailedError.code);
  t.equal(failures[0]?.name, 'mallory');
  t.equal(failures[0]?.address, '127.0.0.1');
});

t.test('missing token: refused with AUTH_FAILED', async (t) => {
  const { server } = await echoServer(t);
  const error = await rejection(connect(server.url, { token: '', role: 'worker', name: 'w' }));
  t.equal(error.code, AuthFailedError.code);
});

t.test('a hello without a proof: error reply AUTH_FAILED and close 1008', async (t) => {
  const { server } = await echoServer(t);
  const ws = new WebSocket(server.url);
  t.teardown(() => ws.terminate());
  ws.on('error', () => {});
  const challenge = await nextFrame(ws);
  t.equal(challenge.type, 'challenge');
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const reply = nextFrame(ws);
  ws.send(encode({ type: 'drain' }));
  const error = await reply;
  t.equal(error.type === 'error' && error.code, AuthFailedError.code);
  t.equal(await within(closed, 3_000, 'close'), CLOSE_CODES.policyViolation);
});

t.test('a hello of another protocol version: PROTOCOL_VERSION error', async (t) => {
  const { server } = await echoServer(t);
  const error = await rejection(
    rawHandshake(t, server.url, { protocolVersion: PROTOCOL_VERSION + 1 }),
  );
  t.equal(error.code, ProtocolVersionError.code);
});

t.test('a role the server does not accept is refused', async (t) => {
  const { server } = await echoServer(t, { roles: ['worker'] });
  const error = await rejection(connect(server.url, { token: TOKEN, role: 'stage', name: 's' }));
  t.equal(error.code, AuthFailedError.code);
});

t.test('handshake timeout: a connection that never says hello is closed', async (t) => {
  const failures = collect<AuthFailedDiagnostic>(t, DIAGNOSTICS.authFailed);
  const { server } = await echoServer(t, { handshakeTimeoutMs: 200 });
  const ws = new WebSocket(server.url);
  t.teardown(() => ws.terminate());
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const { code, reason } = await within(closed, 3_000, 'handshake timeout');
  t.equal(code, CLOSE_CODES.policyViolation);
  t.equal(reason, HandshakeTimeoutError.code);
  t.equal(failures[0]?.code, HandshakeTimeoutError.code);
});

t.test('the client checks the server too: an impostor without the token is refused', async (t) => {
  const impostor = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => new Promise((resolve) => impostor.close(resolve)));
  impostor.on('connection', (ws) => {
    t.teardown(() => ws.terminate());
    ws.on('message', (data: Buffer) => {
      if (decode(data).type === 'hello')
        ws.send(encode({ type: 'welcome', proof: new Uint8Array(32).fill(1) }));
    });
    ws.send(
      encode({ type: 'challenge', protocolVersion: PROTOCOL_VERSION, nonce: 'ab'.repeat(32) }),
    );
  });
  await new Promise((resolve) => impostor.once('listening', resolve));
  const { port } = impostor.address() as { port: number };
  const error = await rejection(
    connect(`ws://127.0.0.1:${port}`, { token: TOKEN, role: 'worker', name: 'w' }),
  );
  t.equal(error.code, AuthFailedError.code);
  t.match(error.message, /server could not prove/);
});

t.test(
  'connect: a server that never sends its challenge gives HandshakeTimeoutError',
  async (t) => {
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    t.teardown(() => new Promise((resolve) => silent.close(resolve)));
    silent.on('connection', (ws) => t.teardown(() => ws.terminate()));
    await new Promise((resolve) => silent.once('listening', resolve));
    const { port } = silent.address() as { port: number };
    const started = Date.now();
    const error = await rejection(
      connect(`ws://127.0.0.1:${port}`, {
        token: TOKEN,
        role: 'worker',
        name: 'w',
        handshakeTimeoutMs: 200,
      }),
    );
    t.equal(error.code, HandshakeTimeoutError.code);
    t.ok(Date.now() - started < 2_000);
  },
);

t.test('the token never crosses the wire, in accepted or refused handshakes', async (t) => {
  const { server } = await echoServer(t);
  const proxy = await startRecordingProxy(t, server.port);
  const url = `ws://127.0.0.1:${proxy.port}`;
  const client = await startClient(t, url, { role: 'worker', name: 'w' });
  await client.request({ type: 'stats.request', requestId: 'r' });
  const wrong = 'wrong-token-5d1c07aa';
  const error = await rejection(connect(url, { token: wrong, role: 'worker', name: 'w2' }));
  t.equal(error.code, AuthFailedError.code);
  client.close();
  await client.closed;
  const bytes = proxy.recorded();
  t.ok(bytes.length > 500, `${bytes.length} bytes recorded`);
  t.ok(
    bytes.includes('challenge') && bytes.includes('welcome'),
    'the handshake went through the proxy',
  );
  for (const secret of [TOKEN, wrong]) {
    t.equal(bytes.indexOf(secret), -1, 'not in plain text');
    t.equal(bytes.indexOf(Buffer.from(secret).toString('base64')), -1, 'not in base64');
    t.equal(bytes.indexOf(Buffer.from(secret).toString('hex')), -1, 'not in hex');
  }
});

t.test('connect: refused port and abort give coded errors', async (t) => {
  const { server } = await echoServer(t);
  const port = server.port;
  await server.close();
  const refused = await rejection(
    connect(`ws://127.0.0.1:${port}`, { token: TOKEN, role: 'worker', name: 'w' }),
  );
  t.equal(refused.code, ConnectFailedError.code);
  const { server: live } = await echoServer(t);
  const aborted = await rejection(
    connect(live.url, { token: TOKEN, role: 'worker', name: 'w', signal: AbortSignal.abort() }),
  );
  t.equal(aborted.code, AbortedError.code);
});

/** A self-signed certificate for 127.0.0.1, made fresh for this run (keys are never committed). */
function selfSignedCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=swarmbee-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore', timeout: 10_000 },
  );
  return { certFile, keyFile };
}

t.test('TLS: wss round trip with a self-signed certificate from files', async (t) => {
  const dir = t.testdir({});
  const { certFile, keyFile } = selfSignedCert(dir);
  const { server } = await echoServer(t, { tls: { certFile, keyFile } });
  t.match(server.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const client = await startClient(t, server.url, { role: 'worker', tls: { caFile: certFile } });
  const reply = await client.request({ type: 'stats.request', requestId: 'tls' });
  t.equal(reply.requestId, 'tls');
  const inline = await startClient(t, server.url, {
    role: 'worker',
    tls: { ca: readFileSync(certFile) },
  });
  t.equal((await inline.request({ type: 'stats.request', requestId: 'pem' })).requestId, 'pem');
  const untrusted = await rejection(
    connect(server.url, { token: TOKEN, role: 'worker', name: 'w' }),
  );
  t.equal(untrusted.code, ConnectFailedError.code, 'an unknown self-signed certificate is refused');
});
