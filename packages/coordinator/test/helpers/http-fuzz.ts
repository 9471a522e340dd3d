/**
 * Seeded HTTP requests for fuzzing the API over raw sockets: valid completions and their
 * mutations, random JSON, and broken HTTP — odd methods, paths, headers, lengths,
 * encodings — plus a judge that says whether an answer is one the API documents.
 */
import { API_ERROR_STATUS } from '@swarmbee/coordinator';
import { mulberry32 } from '@swarmbee/model';
import type { RawResponse } from './raw-http.js';

export interface FuzzRequest {
  /** What kind of request this is, for the report. */
  kind: string;
  method: string;
  bytes: Buffer;
}

const ROUTES = [
  ['POST', '/v1/completions'],
  ['POST', '/v1/chat/completions'],
  ['GET', '/v1/models'],
  ['GET', '/healthz'],
  ['GET', '/metrics'],
  ['GET', '/swarmbee/cluster'],
  ['GET', '/swarmbee/timeline'],
  ['POST', '/swarmbee/replan'],
  ['POST', '/swarmbee/profile'],
] as const;

const METHODS = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'PROPFIND',
  'TRACE',
  'PURGE',
  'SEARCH',
  'get',
  'P0ST',
  'GET POST',
  '',
];
const WORDS = [
  'Once',
  'upon',
  'a',
  'time',
  'cat',
  '☃',
  'é',
  '\n',
  '\u0000',
  '\ud800',
  '"',
  '\\',
  '{',
  ']',
  '<s>',
];
const JSON_KEYS = [
  'prompt',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'steps',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop',
  'stream',
  'echo',
  'logprobs',
  'ignore_eos',
  'n',
  'model',
  'user',
  '__proto__',
  'constructor',
  'prototype',
  'role',
  'content',
  'planner',
  'objective',
  'reprofile',
  'pin_first',
  'context_tokens',
  'micro_batch_candidates',
];

export function makeHttpFuzzer(seed: number, options: { apiKey?: string; port: number }) {
  const random = mulberry32(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => random() < p;

  const word = () => pick(WORDS);
  const text = (n: number) => Array.from({ length: n }, word).join(chance(0.5) ? ' ' : '');
  const number = () =>
    pick([
      0,
      1,
      -1,
      2,
      8,
      511,
      512,
      513,
      1e9,
      -1e9,
      0.5,
      1.5,
      1e308,
      -0,
      3.000001,
      Number.MAX_SAFE_INTEGER + 2,
    ]);
  const scalar = (): unknown =>
    pick([() => number(), () => text(int(4)), () => chance(0.5), () => null])();
  const value = (depth: number): unknown => {
    if (depth > 3 || chance(0.5)) return scalar();
    if (chance(0.5)) return Array.from({ length: int(4) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: int(4) }, () => [pick(JSON_KEYS), value(depth + 1)]),
    );
  };

  /** A request the API serves, small enough to be quick. */
  const validBody = (path: string): unknown => {
    const sampling = {
      max_tokens: int(8),
      temperature: pick([0, 0.7, 1]),
      ...(chance(0.3) ? { top_p: 0.9 } : {}),
      ...(chance(0.3) ? { top_k: int(40) } : {}),
      ...(chance(0.3) ? { seed: int(1000) } : {}),
      ...(chance(0.3) ? { stop: chance(0.5) ? '.' : ['.', ' the'] } : {}),
      ...(chance(0.3) ? { stream: true } : {}),
      ...(chance(0.2) ? { ignore_eos: true } : {}),
    };
    if (path === '/v1/chat/completions')
      return { messages: [{ role: 'user', content: text(1 + int(6)) }], ...sampling };
    if (path.startsWith('/swarmbee/'))
      return chance(0.5) ? {} : { reprofile: false, objective: 'latency' };
    return {
      prompt: chance(0.7) ? text(1 + int(8)) : Array.from({ length: 1 + int(6) }, () => int(512)),
      ...(chance(0.3) ? { echo: true } : {}),
      ...(chance(0.2) ? { logprobs: 1 } : {}),
      ...sampling,
    };
  };

  /** A body: valid, mutated JSON, random JSON, deep, large, or not JSON at all. */
  const body = (path: string): { kind: string; bytes: Buffer } => {
    const valid = JSON.stringify(validBody(path));
    switch (int(9)) {
      case 0:
      case 1:
      case 2:
        return { kind: 'valid', bytes: Buffer.from(valid) };
      case 3: {
        const bytes = Buffer.from(valid);
        for (let i = 0, n = 1 + int(4); i < n; i++) bytes[int(bytes.length)] = int(256);
        return { kind: 'flipped bytes', bytes };
      }
      case 4:
        return { kind: 'truncated', bytes: Buffer.from(valid.slice(0, int(valid.length))) };
      case 5: {
        const patched = JSON.parse(valid) as Record<string, unknown>;
        patched[pick(JSON_KEYS)] = value(0);
        return { kind: 'field changed', bytes: Buffer.from(JSON.stringify(patched)) };
      }
      case 6:
        return { kind: 'random JSON', bytes: Buffer.from(JSON.stringify(value(0)) ?? 'null') };
      case 7: {
        const depth = pick([10, 1000, 100_000]);
        return { kind: 'deep', bytes: Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`) };
      }
      default:
        return pick([
          () => ({ kind: 'empty', bytes: Buffer.alloc(0) }),
          () => ({
            kind: 'large',
            bytes: Buffer.from(JSON.stringify({ prompt: 'a'.repeat(50_000 + int(1_200_000)) })),
          }),
          () => ({ kind: 'utf-16', bytes: Buffer.from(valid, 'utf16le') }),
          () => ({
            kind: 'bom',
            bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)]),
          }),
          () => ({
            kind: 'invalid utf-8',
            bytes: Buffer.concat([
              Buffer.from(valid.slice(0, -2)),
              Buffer.from([0xff, 0xfe]),
              Buffer.from('"}'),
            ]),
          }),
          () => ({
            kind: 'proto',
            bytes: Buffer.from(valid.replace('{', '{"__proto__":{"polluted":1},')),
          }),
        ])();
    }
  };

  const path = (base: string): string => {
    switch (int(14)) {
      case 0:
        return base.toUpperCase();
      case 1:
        return base.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
      case 2:
        return `/${base}`;
      case 3:
        return `${base}/../${base.slice(1)}`;
      case 4:
        return `http://127.0.0.1:${options.port}${base}`;
      case 5:
        return `${base}?${text(2).replace(/\s/g, '&')}`;
      case 6:
        return `/${Array.from({ length: 1 + int(6) }, () => pick(['v1', 'swarmbee', 'x', '..', '.', '%2e', '', 'healthz'])).join('/')}`;
      case 7:
        return `/${'a'.repeat(int(20_000))}`;
      case 8:
        return pick(['*', '', 'no-slash', '/%zz', '/%00', '/\u00e9', `/${'%'.repeat(3)}`]);
      default:
        return base;
    }
  };

  const headers = (bytes: Buffer): { kind: string; lines: string[] } => {
    const lines: string[] = ['Host: 127.0.0.1', 'Connection: close'];
    let kind = '';
    if (options.apiKey && !chance(0.2))
      lines.push(`Authorization: Bearer ${chance(0.95) ? options.apiKey : 'wrong'}`);
    switch (int(10)) {
      case 0:
        lines.push(
          `Content-Type: ${pick(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'APPLICATION/JSON', 'application/jsonx', ''])}`,
        );
        kind = 'content-type';
        break;
      case 1:
        break; // no content type
      default:
        lines.push('Content-Type: application/json');
    }
    switch (int(12)) {
      case 0:
        lines.push(`Content-Length: ${bytes.length + 1 + int(20)}`);
        kind += ' length over';
        break;
      case 1:
        lines.push(`Content-Length: ${Math.max(0, bytes.length - 1 - int(5))}`);
        kind += ' length under';
        break;
      case 2:
        lines.push(
          `Content-Length: ${pick(['-1', 'abc', '1e3', `${bytes.length}, ${bytes.length}`, ''])}`,
        );
        kind += ' length bad';
        break;
      case 3:
        lines.push('Transfer-Encoding: chunked');
        kind += ' chunked';
        break;
      default:
        lines.push(`Content-Length: ${bytes.length}`);
    }
    if (chance(0.1))
      lines.push(
        pick([
          'Expect: 100-continue',
          'Expect: 200-ok',
          'Content-Encoding: gzip',
          'Transfer-Encoding: gzip, chunked',
          `X-Big: ${'b'.repeat(20_000)}`,
          'Bad Header: x',
          'X-Tab:\tv',
          'X-Null: a\u0000b',
          'Upgrade: websocket\r\nConnection: Upgrade',
          ' folded: x',
        ]),
      );
    return { kind, lines };
  };

  return {
    next(): FuzzRequest {
      if (chance(0.03)) {
        const garbage = pick([
          'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
          'GET / HTTP/1.1\r\n\r\n',
          'GET /healthz HTTP/1.0\r\n\r\n',
          'GET /healthz\r\n\r\n',
          '\r\n\r\n',
          `${text(8)}\r\n\r\n`,
          'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n',
        ]);
        return {
          kind: 'not HTTP/1.1',
          method: garbage.split(' ')[0]!,
          bytes: Buffer.from(garbage),
        };
      }
      const [routeMethod, route] = pick(ROUTES);
      const method = chance(0.8) ? routeMethod : pick(METHODS);
      const target = path(route);
      const sent =
        method === 'GET' || method === 'HEAD'
          ? chance(0.9)
            ? { kind: 'no body', bytes: Buffer.alloc(0) }
            : body(route)
          : body(route);
      const { kind, lines } = headers(sent.bytes);
      let payload = sent.bytes;
      if (lines.includes('Transfer-Encoding: chunked'))
        payload = Buffer.concat([
          Buffer.from(`${sent.bytes.length.toString(16)}\r\n`),
          sent.bytes,
          Buffer.from(chance(0.8) ? '\r\n0\r\n\r\n' : '\r\nzz\r\n'),
        ]);
      const head = `${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
      return {
        kind: `${sent.kind}${kind}`.trim(),
        method,
        bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload]),
      };
    },
  };
}

/** Why an answer is not one the API documents, or undefined when it is. */
export function judge(request: FuzzRequest, response: RawResponse): string | undefined {
  const { status } = response;
  if (status === 0) return 'the connection closed without an answer';
  const error = status >= 400;
  if (!error && status !== 200) return `status ${status}`;
  if (request.method === 'HEAD' || response.body === '') {
    if (request.method === 'HEAD') return undefined;
    return error ? `an empty ${status} body` : undefined;
  }
  const type = response.headers['content-type'] ?? '';
  if (error) {
    let body: { error?: Record<string, unknown> };
    try {
      body = JSON.parse(response.body);
    } catch {
      return `a ${status} body that is not JSON: ${response.body.slice(0, 80)}`;
    }
    const keys = Object.keys(body.error ?? {})
      .sort()
      .join(',');
    if (Object.keys(body).join() !== 'error' || keys !== 'code,message,param,retryable,type')
      return `a ${status} body of another shape: ${response.body.slice(0, 120)}`;
    const code = body.error!.code as string;
    if (API_ERROR_STATUS.get(code) !== status) return `${code} with status ${status}`;
    return undefined;
  }
  if (type.startsWith('text/event-stream')) {
    if (!response.body.endsWith('data: [DONE]\n\n')) return 'a stream without [DONE]';
    for (const event of response.body.split('\n\n').filter(Boolean)) {
      if (event === 'data: [DONE]') continue;
      try {
        JSON.parse(event.replace(/^data: /, ''));
      } catch {
        return `a stream event that is not JSON: ${event.slice(0, 80)}`;
      }
    }
    return undefined;
  }
  if (type.startsWith('application/json')) {
    try {
      JSON.parse(response.body);
    } catch {
      return 'a 200 body that is not JSON';
    }
    return undefined;
  }
  if (type.startsWith('text/plain')) return undefined; // /metrics
  if (/^text\/(html|css|javascript)/.test(type)) return undefined; // the console at /
  return `a 200 of type ${type}`;
}
