/**
 * The console's page and its two assets, built into dist/www by
 * scripts/build-console.mjs and read once at start. They hold no data: the page asks for
 * the API key and reads everything through the guarded routes, so they are open routes.
 * A Content-Security-Policy keeps the page to its own origin. Each file is gzipped once at
 * start and sent so to browsers that accept it (the script is a third of its size so).
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { SwarmBeeError } from '@swarmbee/core';
import type { FastifyInstance } from 'fastify';

/**
 * Where the built console lives: dist/www of this package, found through the package's
 * entry (src/index.ts or dist/index.js, one level below the package) rather than beside this
 * module, so the bundled CLI (packages/cli/dist/bundle) finds it too.
 */
export const CONSOLE_DIR = new URL('../dist/www/', import.meta.resolve('@swarmbee/coordinator'));

const ASSETS = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/console/console.js', file: 'console.js', type: 'text/javascript; charset=utf-8' },
  { url: '/console/console.css', file: 'console.css', type: 'text/css; charset=utf-8' },
] as const;

const HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

export function staticRoutes(app: FastifyInstance, dir: URL = CONSOLE_DIR): void {
  for (const asset of ASSETS) {
    let body: { plain: Buffer; gzip: Buffer } | undefined;
    try {
      const plain = readFileSync(new URL(asset.file, dir));
      body = { plain, gzip: gzipSync(plain) };
    } catch {
      body = undefined;
    }
    app.get(asset.url, { config: { access: 'open' } }, async (request, reply) => {
      if (!body)
        throw new SwarmBeeError(
          `the console is not built (${asset.file} is missing from ${dir.pathname}); run npm run build`,
        );
      void reply.headers(HEADERS).header('vary', 'accept-encoding').type(asset.type);
      if (!/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? '')))
        return reply.send(body.plain);
      return reply.header('content-encoding', 'gzip').send(body.gzip);
    });
  }
}
