/**
 * Slow clients are cut off with the documented 408: headers or a body dribbled over a raw
 * socket, or nothing sent at all. A request that arrives in time is served however long
 * its answer then takes to stream.
 */
import { createApi, Metrics } from '@swarmbee/coordinator';
import { InvalidArgumentError } from '@swarmbee/core';
import t from 'tap';
import { checkErrorBody } from './helpers/error-body.js';
import { startLocalApi } from './helpers/local-api.js';
import { head, rawRequest } from './helpers/raw-http.js';

const HEADERS_TIMEOUT_MS = 600;
const REQUEST_TIMEOUT_MS = 1500;
/** Node checks deadlines on an interval; allow that and a loaded machine. */
const SLACK_MS = 1500;

t.test('slow headers, a slow body and silence each get a 408 in time', async (t) => {
  const api = await startLocalApi(t, {
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  if (!api) return;
  const headerLines = Array.from({ length: 40 }, (_, i) => `x-slow-${i}: ${i}\r\n`);
  const slowHeaders = await rawRequest(api.port, 'POST /v1/completions HTTP/1.1\r\n', {
    dribble: headerLines,
    gapMs: 100,
  });
  let error = checkErrorBody(t, slowHeaders, 408, 'REQUEST_TIMEOUT');
  t.equal(error.retryable, true);
  t.ok(
    slowHeaders.ms >= HEADERS_TIMEOUT_MS && slowHeaders.ms < HEADERS_TIMEOUT_MS + SLACK_MS,
    `headers cut off after ${slowHeaders.ms.toFixed(0)} ms`,
  );

  const silent = await rawRequest(api.port, '');
  checkErrorBody(t, silent, 408, 'REQUEST_TIMEOUT');
  t.ok(
    silent.ms < HEADERS_TIMEOUT_MS + SLACK_MS,
    `silence cut off after ${silent.ms.toFixed(0)} ms`,
  );

  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4 });
  const slowBody = await rawRequest(
    api.port,
    head('POST /v1/completions HTTP/1.1', {
      'content-type': 'application/json',
      'content-length': String(body.length),
    }),
    { dribble: [...body], gapMs: 100 },
  );
  error = checkErrorBody(t, slowBody, 408, 'REQUEST_TIMEOUT');
  t.match(error.message, /--request-timeout-ms/);
  t.ok(
    slowBody.ms >= REQUEST_TIMEOUT_MS && slowBody.ms < REQUEST_TIMEOUT_MS + SLACK_MS,
    `body cut off after ${slowBody.ms.toFixed(0)} ms (the headers were in time)`,
  );
  t.equal(api.calls.service, 0, 'no cut-off request reached the service');

  const inTime = await rawRequest(
    api.port,
    head('POST /v1/completions HTTP/1.1', {
      'content-type': 'application/json',
      'content-length': String(body.length),
    }),
    { dribble: [body.slice(0, 10), body.slice(10, 20), body.slice(20)], gapMs: 150 },
  );
  t.equal(inTime.status, 200, 'a request that arrives in time is served');
  t.equal(JSON.parse(inTime.body).usage.completion_tokens, 4);
});

t.test('a streamed answer outlives the request timeout', async (t) => {
  const requestTimeoutMs = 200;
  const api = await startLocalApi(t, { headersTimeoutMs: 150, requestTimeoutMs });
  if (!api) return;
  const body = JSON.stringify({
    prompt: [1],
    max_tokens: 511,
    ignore_eos: true,
    temperature: 0,
    stream: true,
  });
  const stream = await rawRequest(
    api.port,
    head('POST /v1/completions HTTP/1.1', {
      'content-type': 'application/json',
      'content-length': String(body.length),
    }) + body,
    { timeoutMs: 60_000 },
  );
  t.equal(stream.status, 200);
  t.match(stream.body, /data: \[DONE\]\n\n$/);
  t.notMatch(stream.body, /SWARMBEE_ERR/);
  t.ok(stream.ms > requestTimeoutMs, `streamed for ${stream.ms.toFixed(0)} ms`);
});

t.test('BAD OPTIONS - the headers timeout cannot exceed the request timeout', async (t) => {
  const metrics = new Metrics({
    queued: () => 0,
    active: () => 0,
    inFlight: () => 0,
    stages: () => [],
  });
  const base = {
    service: () => {
      throw new Error('unused');
    },
    health: () => ({ ready: true }),
    metrics,
    modelName: 'm',
  };
  t.throws(() => createApi({ ...base, headersTimeoutMs: 5000, requestTimeoutMs: 1000 }), {
    code: InvalidArgumentError.code,
    message: /headers timeout \(5000 ms\) cannot exceed the request timeout \(1000 ms\)/,
  });
  t.throws(() => createApi({ ...base, requestTimeoutMs: 0 }), { code: InvalidArgumentError.code });
});
