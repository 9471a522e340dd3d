/**
 * Every HTTP error has the documented body, and docs/API.md lists exactly the codes the
 * API answers with: 400 (bad JSON, prototype keys, fields, malformed HTTP), 404, 405, 413
 * (body, characters, tokens), 415, 417, 431 — each over a raw socket to the real server.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { API_ERROR_STATUS } from '@swarmbee/coordinator';
import t from 'tap';
import { REPO_ROOT } from '../../../test/helpers/shared-models.js';
import { checkErrorBody } from './helpers/error-body.js';
import { startLocalApi } from './helpers/local-api.js';
import { head, rawRequest } from './helpers/raw-http.js';

t.test(
  'docs/API.md lists exactly the codes the API answers with, and their statuses',
  async (t) => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'API.md'), 'utf8');
    const errors = doc.slice(doc.indexOf('## Errors'));
    const documented = new Map<string, number>();
    for (const [, status, code] of errors.matchAll(/^\| (\d{3}) \| `([A-Z_]+)` \|/gm))
      documented.set(`SWARMBEE_ERR_${code}`, Number(status));
    t.ok(documented.size >= 15, `${documented.size} codes documented`);
    t.same(
      [...documented].sort(),
      [...API_ERROR_STATUS].sort(),
      'docs/API.md and API_ERROR_STATUS agree',
    );
  },
);

t.test('every error the API gives has the documented body', async (t) => {
  const api = await startLocalApi(t, { limits: { maxPromptTokens: 100 } });
  if (!api) return;
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    rawRequest(
      api.port,
      head(`POST ${path} HTTP/1.1`, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        ...headers,
      }) + body,
    );
  const complete = (body: unknown) => post('/v1/completions', JSON.stringify(body));

  checkErrorBody(t, await rawRequest(api.port, head('GET /nope HTTP/1.1')), 404, 'NOT_FOUND');
  const wrong = await rawRequest(api.port, head('PUT /v1/models HTTP/1.1'));
  checkErrorBody(t, wrong, 405, 'METHOD_NOT_ALLOWED');
  t.equal(wrong.headers.allow, 'GET, HEAD');
  checkErrorBody(
    t,
    await rawRequest(api.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n'),
    405,
    'METHOD_NOT_ALLOWED',
  );

  let error = checkErrorBody(
    t,
    await post('/v1/completions', '{"prompt": "x",'),
    400,
    'INVALID_ARGUMENT',
  );
  t.match(error, { param: 'body', message: /^body: not valid JSON/ });
  error = checkErrorBody(t, await post('/v1/completions', ''), 400, 'INVALID_ARGUMENT');
  t.match(error.message, /not valid JSON/);
  error = checkErrorBody(
    t,
    await post('/v1/completions', '{"prompt": "x", "__proto__": {"admin": true}}'),
    400,
    'INVALID_ARGUMENT',
  );
  t.match(error, { param: '__proto__', message: /__proto__: this key is not accepted/ });
  t.notMatch(error.message, /JSON/, 'not called invalid JSON');
  error = checkErrorBody(
    t,
    await post(
      '/v1/chat/completions',
      '{"messages": [{"role": "user", "content": "x", "\\u005f_proto__": 1}]}',
    ),
    400,
    'INVALID_ARGUMENT',
  );
  t.equal(error.param, 'messages.0.__proto__', 'an escaped spelling is found where it is');
  error = checkErrorBody(
    t,
    await complete({ prompt: 'x', constructor: { prototype: { polluted: 1 } } }),
    400,
    'INVALID_ARGUMENT',
  );
  t.equal(error.param, 'constructor');
  t.equal(({} as { polluted?: number }).polluted, undefined);

  const fields: [unknown, string, RegExp][] = [
    [
      { prompt: 5 },
      'prompt',
      /^prompt: expected a string or a non-empty array of integer token ids, got 5$/,
    ],
    [{ prompt: [] }, 'prompt', /expected a string or a non-empty array .*, got an empty array/],
    [{ prompt: [1, 2.5] }, 'prompt', /integer token ids, got an array of 2 \(numbers\)/],
    [
      { prompt: 'x', stop: Array(9).fill('.') },
      'stop',
      /^stop: expected a string or an array of at most 8 stop strings, got an array of 9 \(strings\)$/,
    ],
    [{ prompt: 'x', stop: [1] }, 'stop', /got an array of 1 \(numbers\)/],
    [
      { prompt: 'x', max_tokens: -1 },
      'max_tokens',
      /^max_tokens: expected an integer ≥ 0 .*got -1$/,
    ],
    [
      { prompt: 'x', temperature: 'hot' },
      'temperature',
      /expected a number from 0 to 100, got "hot"/,
    ],
    [{ prompt: 'x', top_p: 0 }, 'top_p', /expected a number above 0 and at most 1, got 0/],
    [{ prompt: 'x', n: 2 }, 'n', /expected 1/],
    [{ prompt: 'x', stream: 'yes' }, 'stream', /expected true or false/],
    [{ max_tokens: 3 }, 'prompt', /prompt: expected .*, got nothing/],
    [[1, 2], 'body', /^body: expected a JSON object with a "prompt", got an array of 2/],
  ];
  for (const [body, param, message] of fields) {
    error = checkErrorBody(t, await complete(body), 400, 'INVALID_ARGUMENT');
    t.equal(error.param, param);
    t.match(error.message, message);
  }
  const chatFields: [unknown, string, RegExp][] = [
    [{ messages: [] }, 'messages', /expected a non-empty array of messages/],
    [
      { messages: [{ role: 'king', content: 'x' }] },
      'messages.0.role',
      /expected one of system, user, assistant, developer, got "king"/,
    ],
    [
      { messages: [{ role: 'user', content: [{ type: 'image' }] }] },
      'messages.0.content',
      /expected a string or an array of \{"type": "text"/,
    ],
  ];
  for (const [body, param, message] of chatFields) {
    error = checkErrorBody(
      t,
      await post('/v1/chat/completions', JSON.stringify(body)),
      400,
      'INVALID_ARGUMENT',
    );
    t.equal(error.param, param);
    t.match(error.message, message);
  }
  error = checkErrorBody(
    t,
    await post('/swarmbee/replan', '{"planner": "magic"}'),
    400,
    'INVALID_ARGUMENT',
  );
  t.equal(error.param, 'planner');

  error = checkErrorBody(
    t,
    await complete({ prompt: 'x'.repeat(60_000) }),
    413,
    'REQUEST_TOO_LARGE',
  );
  t.match(
    error.message,
    /60000 characters; this server tokenizes at most \d+ \(--max-prompt-chars\)/,
  );
  error = checkErrorBody(t, await complete({ prompt: ' x'.repeat(120) }), 413, 'REQUEST_TOO_LARGE');
  t.match(error.message, /tokens; this server accepts at most 100 \(--max-prompt-tokens\)/);
  error = checkErrorBody(
    t,
    await complete({ prompt: Array(200_000).fill(5) }),
    400,
    'CONTEXT_OVERFLOW',
  );
  checkErrorBody(t, await complete({ prompt: Array(300).fill(5) }), 413, 'REQUEST_TOO_LARGE');
  error = checkErrorBody(
    t,
    await complete({ prompt: 'x'.repeat(1_100_000) }),
    413,
    'REQUEST_TOO_LARGE',
  );
  t.equal(error.param, 'body');
  checkErrorBody(t, await complete({ prompt: [1, 999] }), 400, 'TOKEN_OUT_OF_VOCAB');

  error = checkErrorBody(
    t,
    await post('/v1/completions', 'prompt=x', {
      'content-type': 'application/x-www-form-urlencoded',
    }),
    415,
    'UNSUPPORTED_MEDIA_TYPE',
  );
  t.equal(error.param, 'content-type');
  checkErrorBody(
    t,
    await post('/v1/completions', '"x"', { 'content-type': 'text/plain' }),
    415,
    'UNSUPPORTED_MEDIA_TYPE',
  );
  error = checkErrorBody(
    t,
    await rawRequest(api.port, head('GET /healthz HTTP/1.1', { expect: 'the-unexpected' })),
    417,
    'EXPECTATION_FAILED',
  );
  t.equal(error.param, 'expect');
  checkErrorBody(
    t,
    await rawRequest(api.port, head('GET /healthz HTTP/1.1', { 'x-big': 'a'.repeat(20_000) })),
    431,
    'HEADERS_TOO_LARGE',
  );
  for (const broken of [
    'GET /healthz HTTP/9.9\r\n\r\n',
    'G\u0001T /healthz HTTP/1.1\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n',
    'GET /v1/models%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ]) {
    error = checkErrorBody(t, await rawRequest(api.port, broken), 400, 'INVALID_ARGUMENT');
  }

  const healthy = await rawRequest(api.port, head('GET /healthz HTTP/1.1'));
  t.equal(healthy.status, 200, 'and the server keeps serving');
});
