/** The API client against a plain HTTP server on loopback: JSON, events, and errors with their codes. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { type ApiTarget, getJson, postEvents, postJson } from '../src/api-client.js';

async function serve(t: Test): Promise<ApiTarget> {
  const server: Server = createServer((request, response) => {
    if (request.headers.authorization !== 'Bearer k') {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          error: { code: 'SWARMBEE_ERR_UNAUTHORIZED', message: 'no key', retryable: false },
        }),
      );
    } else if (request.url === '/v1/ok') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ ok: true }));
    } else if (request.url === '/v1/events') {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: {"n":1}\n\n');
      response.write('data: {"n":2}\n\n');
      response.write(
        'data: {"error":{"code":"SWARMBEE_ERR_ENGINE_FAILED","message":"stage 1 failed","retryable":true}}\n\n',
      );
      response.end('data: [DONE]\n\n');
    } else {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ message: 'Route not found', error: 'Not Found', statusCode: 404 }),
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`, apiKey: 'k' };
}

t.test('JSON both ways; the /v1 suffix and trailing slashes are the API root', async (t) => {
  const target = await serve(t);
  t.same(await getJson(target, '/v1/ok'), { ok: true });
  t.same(await postJson(target, '/v1/ok', { a: 1 }), { ok: true });
});

t.test('an error body with a code becomes that coded error', async (t) => {
  const target = await serve(t);
  await t.rejects(getJson({ ...target, apiKey: 'wrong' }, '/v1/ok'), {
    code: 'SWARMBEE_ERR_UNAUTHORIZED',
    message: 'no key',
  });
});

t.test("a framework's own error (no code) is reported by status and text", async (t) => {
  const target = await serve(t);
  await t.rejects(postJson(target, '/v1/missing', {}), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
    message: /the API answered 404: .*Route not found/,
  });
});

t.test('events arrive in order; an error event throws its coded error at the end', async (t) => {
  const target = await serve(t);
  const seen: unknown[] = [];
  await t.rejects(
    postEvents(target, '/v1/events', {}, (event) => seen.push(event)),
    { code: 'SWARMBEE_ERR_ENGINE_FAILED', retryable: true },
  );
  t.same(seen, [{ n: 1 }, { n: 2 }]);
});
