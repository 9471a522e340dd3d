#!/usr/bin/env node
/**
 * Health probe for containers: GETs a URL and exits 0 when the answer is the one
 * expected, 1 otherwise (with the reason on stderr). Node's own fetch, no dependencies,
 * so it runs in the SwarmBee image, which has no curl.
 *
 *   node deploy/healthcheck.mjs http://127.0.0.1:8080/healthz
 *       the coordinator: 200 once a plan is deployed, 503 while it waits for workers
 *   node deploy/healthcheck.mjs --status 426 --body SwarmBee http://127.0.0.1:7071/
 *       a worker's data port: its WebSocket server answers plain HTTP with
 *       "426 SwarmBee speaks WebSocket here." from the worker's own event loop, which a
 *       bare TCP connect (accepted by the kernel) would not prove
 *
 * Options: --status CODE (default 200), --body TEXT (the body must contain it),
 * --timeout-ms MS (default 3000).
 */
import { parseArgs } from 'node:util';

const USAGE =
  'usage: healthcheck.mjs [--status CODE] [--body TEXT] [--timeout-ms MS] URL\n' +
  '  exits 0 when GET URL answers CODE (default 200) and its body contains TEXT';

function fail(message) {
  process.stderr.write(`healthcheck: ${message}\n`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      status: { type: 'string', default: '200' },
      body: { type: 'string' },
      'timeout-ms': { type: 'string', default: '3000' },
    },
  });
} catch (error) {
  fail(`${error.message}\n${USAGE}`);
}
const { values, positionals } = parsed;
const url = positionals[0];
const status = Number(values.status);
const timeoutMs = Number(values['timeout-ms']);
if (positionals.length !== 1 || !Number.isInteger(status) || !(timeoutMs > 0)) fail(USAGE);

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  if (response.status !== status)
    fail(`${url} answered ${response.status}, expected ${status}: ${text.slice(0, 200)}`);
  if (values.body !== undefined && !text.includes(values.body))
    fail(`${url} answered ${response.status} without "${values.body}" in its body`);
} catch (error) {
  fail(`${url}: ${error.cause?.code ?? error.name}: ${error.cause?.message ?? error.message}`);
}
