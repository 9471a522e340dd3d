/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1:0: the tree listing API and
 * `resolve` downloads with Range support, plus a plain file base (llama2.c's
 * tokenizer). It can drop a connection half-way through a file, and records
 * every request, so tests see resumes happen.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubServerFile {
  bytes: Buffer;
  /** List this sha256 instead of the real one (to provoke a checksum failure). */
  listedSha256?: string;
}

export interface HubServer {
  url: string;
  /** `repo` → path → file. */
  repos: Map<string, Map<string, HubServerFile>>;
  /** Files under `/llama2c/` (no listing, no hash). */
  plain: Map<string, Buffer>;
  /** Paths (as requested) whose next response is cut after half the body. */
  dropOnce: Set<string>;
  /** Every request: method, path and Range header. */
  requests: { path: string; range?: string }[];
  close(): Promise<void>;
}

/** Files above this size are listed as LFS files (with sha256), as the Hub does. */
const LFS_THRESHOLD_BYTES = 10_000;

export async function startHubServer(): Promise<HubServer> {
  const repos = new Map<string, Map<string, HubServerFile>>();
  const plain = new Map<string, Buffer>();
  const dropOnce = new Set<string>();
  const requests: HubServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname);
    requests.push({ path, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const tree = path.match(/^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/);
    if (tree) {
      const files = repos.get(tree[1]!);
      if (!files) return notFound(res);
      const listing = [...files.entries()].map(([p, f]) => ({
        type: 'file',
        path: p,
        size: f.bytes.length,
        oid: createHash('sha1').update(`blob ${f.bytes.length}\0`).update(f.bytes).digest('hex'),
        ...(f.bytes.length > LFS_THRESHOLD_BYTES
          ? {
              lfs: {
                oid: f.listedSha256 ?? createHash('sha256').update(f.bytes).digest('hex'),
                size: f.bytes.length,
                pointerSize: 134,
              },
            }
          : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(listing));
    }
    const resolve = path.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    const bytes = resolve
      ? repos.get(resolve[1]!)?.get(resolve[3]!)?.bytes
      : path.startsWith('/llama2c/')
        ? plain.get(path.slice('/llama2c/'.length))
        : undefined;
    if (!bytes) return notFound(res);
    let start = 0;
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
        return res.end();
      }
    }
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': body.length,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (dropOnce.delete(path)) {
      // Half the body, then the connection dies under the client.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    repos,
    plain,
    dropOnce,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function notFound(res: import('node:http').ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('Entry not found');
}

/** A port that was just free: bind 127.0.0.1:0, read the port, close. Nothing listens there. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
