/**
 * The API key guards every guarded route however its path is spelled: over raw sockets,
 * each guarded route is asked in percent-encoded, dot-segment, doubled-slash,
 * case-changed, absolute-form, HEAD and other spellings without the key, and none
 * reaches a handler. Unknown paths answer 401 without the key, like guarded ones, so
 * nothing tells which routes exist.
 */

import t from 'tap';
import { routesOf } from '../src/api/routing.js';
import { startLocalApi } from './helpers/local-api.js';
import { head, rawRequest } from './helpers/raw-http.js';

const KEY = 'sesame-open';

/** Spellings a router or proxy might take for `path` (every one lower- or upper-case safe). */
function spellings(path: string, port: number): string[] {
  const segments = path.split('/').filter(Boolean);
  const last = segments.at(-1)!;
  const parent = `/${segments.slice(0, -1).join('/')}`;
  const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
  const pctUpper = (s: string) => pct(s).toUpperCase();
  return [
    path,
    `${parent}/${pct(last[0]!)}${last.slice(1)}`,
    `${parent}/${pct(last)}`,
    `/${segments.map(pctUpper).join('/')}`,
    `${parent}%2f${last}`,
    `${parent}%2F${last}`,
    `${parent}/./${last}`,
    `${parent}/x/../${last}`,
    `/v1/../${path.slice(1)}`,
    `${parent}/%2e/${last}`,
    `${parent}/%2e%2e/${segments.at(-2)}/${last}`,
    `${path}/.`,
    `/${path}`,
    `${parent}//${last}`,
    `${path}/`,
    `${path}//`,
    path.toUpperCase(),
    `${parent}/${last.toUpperCase()}`,
    `${parent.toUpperCase()}/${last}`,
    `http://127.0.0.1:${port}${path}`,
    `HTTP://127.0.0.1:${port}${path}`,
    `http://evil.example${path}`,
    `https://127.0.0.1${path}`,
    `http://127.0.0.1:${port}/${path}`,
    `${path}?x=1`,
    `${path}?`,
    `${path}#fragment`,
    `${path};x=1`,
    `${path}%00`,
    `${path}%20`,
    `${path}\t`,
    path.replaceAll('/', '\\'),
  ];
}

t.test('no spelling of a guarded route reaches its handler without the key', async (t) => {
  const api = await startLocalApi(t, { apiKey: KEY });
  if (!api) return;
  const guarded = routesOf(api.app).filter((route) => route.access === 'guarded');
  t.same(
    guarded.map((route) => route.url).sort(),
    [
      '/swarmbee/bench',
      '/swarmbee/bench/:run/:file',
      '/swarmbee/cluster',
      '/swarmbee/events',
      '/swarmbee/finetune',
      '/swarmbee/profile',
      '/swarmbee/replan',
      '/swarmbee/timeline',
      '/v1/chat/completions',
      '/v1/completions',
      '/v1/models',
    ],
    'every /v1 and /swarmbee route is guarded',
  );
  const before = { ...api.calls };
  const statuses = new Map<number, number>();
  let asked = 0;
  for (const route of guarded) {
    for (const target of spellings(route.url, api.port)) {
      for (const method of new Set([...route.methods, 'HEAD', 'GET', 'POST', 'OPTIONS'])) {
        const body = '{"prompt":"Hi","max_tokens":1,"reprofile":false}';
        const request = head(`${method} ${target} HTTP/1.1`, {
          'content-type': 'application/json',
          'content-length': String(body.length),
        });
        const response = await rawRequest(api.port, request + body);
        asked++;
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        // Refused for the key, or (for what is not HTTP at all) refused as malformed.
        if (response.status !== 401 && response.status !== 400)
          t.fail(`${method} ${JSON.stringify(target)} answered ${response.status} without the key`);
        if (response.status === 400 && method !== 'HEAD')
          t.equal(JSON.parse(response.body).error.code, 'SWARMBEE_ERR_INVALID_ARGUMENT');
        if (response.status === 401 && method !== 'HEAD')
          t.equal(JSON.parse(response.body).error.code, 'SWARMBEE_ERR_UNAUTHORIZED');
      }
    }
  }
  t.same(api.calls, before, `none of ${asked} requests reached a guarded handler or the service`);
  t.comment(`statuses without the key: ${JSON.stringify(Object.fromEntries(statuses))}`);

  // The same requests with the key do reach them: the handlers above were reachable.
  const authorization = `Bearer ${KEY}`;
  const replan = await rawRequest(
    api.port,
    `${head(`POST http://127.0.0.1:${api.port}/swarmbee/%72eplan HTTP/1.1`, {
      authorization,
      'content-type': 'application/json',
      'content-length': '2',
    })}{}`,
  );
  t.equal(replan.status, 200, replan.body);
  t.equal(api.calls.replan, before.replan + 1, 'with the key, an absolute-form target is served');
  const cluster = await rawRequest(
    api.port,
    head('GET /swarmbee/cluster HTTP/1.1', { authorization }),
  );
  t.equal(cluster.status, 200);
});

t.test('unknown paths and methods: 401 without the key, then 404 and 405', async (t) => {
  const api = await startLocalApi(t, { apiKey: KEY });
  if (!api) return;
  const authorization = `Bearer ${KEY}`;
  for (const path of ['/nope', '/v1/nope', '/swarmbee/nope', '/console/x.js', '/healthz/x']) {
    const bare = await rawRequest(api.port, head(`GET ${path} HTTP/1.1`));
    t.equal(bare.status, 401, `${path} without the key is refused like a guarded route`);
    const keyed = await rawRequest(api.port, head(`GET ${path} HTTP/1.1`, { authorization }));
    t.equal(keyed.status, 404, `${path} with the key is not found`);
    t.match(JSON.parse(keyed.body).error, {
      code: 'SWARMBEE_ERR_NOT_FOUND',
      type: 'not_found_error',
    });
  }
  const wrongMethod = await rawRequest(
    api.port,
    head('DELETE /v1/completions HTTP/1.1', { authorization }),
  );
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.allow, 'POST');
  t.equal(JSON.parse(wrongMethod.body).error.code, 'SWARMBEE_ERR_METHOD_NOT_ALLOWED');
  t.equal(
    (await rawRequest(api.port, head('DELETE /v1/completions HTTP/1.1'))).status,
    401,
    'without the key a wrong method on a guarded path is a 401 too',
  );
  // The console's page and assets hold no data (it asks for the key): open, like /healthz.
  for (const path of ['/healthz', '/metrics', '/', '/console/console.js', '/console/console.css']) {
    t.equal((await rawRequest(api.port, head(`GET ${path} HTTP/1.1`))).status, 200, path);
    t.equal((await rawRequest(api.port, head(`HEAD ${path} HTTP/1.1`))).status, 200, path);
    const post = await rawRequest(api.port, head(`POST ${path} HTTP/1.1`));
    t.equal(post.status, 405, `POST ${path} is a 405 with or without the key`);
    t.equal(post.headers.allow, 'GET, HEAD');
  }
  const wrongKey = await rawRequest(
    api.port,
    head('GET /v1/models HTTP/1.1', { authorization: `Bearer ${KEY}x` }),
  );
  t.equal(wrongKey.status, 401);
  t.equal(wrongKey.headers['www-authenticate'], 'Bearer');
});

t.test('without an API key, every route is open and unknown paths are 404', async (t) => {
  const api = await startLocalApi(t);
  if (!api) return;
  t.equal((await rawRequest(api.port, head('GET /v1/models HTTP/1.1'))).status, 200);
  t.equal((await rawRequest(api.port, head('GET /nope HTTP/1.1'))).status, 404);
});
