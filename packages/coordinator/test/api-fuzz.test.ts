/**
 * HTTP fuzz of the API: seeded random and mutated requests (bodies, headers, paths,
 * methods, lengths, encodings) over raw sockets to the real server over a real in-process
 * pipeline. Every answer must be a documented status with the documented body (or a valid
 * completion), and afterwards the server still answers a health check and the reference
 * completion. `npm test` sends FUZZ_API_REQUESTS (default 1,500); the full run is
 * `FUZZ_API_REQUESTS=10000 npx tap packages/coordinator/test/api-fuzz.test.ts`.
 * FUZZ_SEED replays a run.
 */
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { STORIES260K } from '../../../test/helpers/shared-models.js';
import { judge, makeHttpFuzzer } from './helpers/http-fuzz.js';
import { startLocalApi } from './helpers/local-api.js';
import { head, rawRequest } from './helpers/raw-http.js';

const REQUESTS = Number(process.env.FUZZ_API_REQUESTS ?? 1500);
const PARALLEL = 8;
/** Stop sending after this long, whatever the count (the report says how many went). */
const BUDGET_MS = Number(process.env.FUZZ_API_BUDGET_MS ?? (REQUESTS > 2000 ? 1_200_000 : 120_000));
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const KEY = 'fuzz-key';

t.test(`FUZZ - ${REQUESTS} HTTP requests at the API (seed ${seed})`, async (t) => {
  const api = await startLocalApi(t, {
    apiKey: KEY,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1000,
    limits: { maxTokens: 64, maxQueued: 64 },
  });
  if (!api) return;
  const fuzzer = makeHttpFuzzer(seed, { apiKey: KEY, port: api.port });
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  const deadline = Date.now() + BUDGET_MS;
  let sent = 0;
  const started = performance.now();
  const lane = async () => {
    while (sent < REQUESTS && Date.now() < deadline) {
      const number = ++sent;
      const request = fuzzer.next();
      const response = await rawRequest(api.port, request.bytes.toString('latin1'), {
        timeoutMs: 30_000,
      }).catch((error: Error) => ({ status: -1, headers: {}, body: error.message, ms: 0 }));
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      const problem = response.status === -1 ? `no end within 30 s` : judge(request, response);
      if (problem)
        problems.push(
          `#${number} ${request.kind}: ${JSON.stringify(request.bytes.toString('latin1').slice(0, 160))} -> ${problem}`,
        );
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  const seconds = (performance.now() - started) / 1000;
  const counts = [...statuses].sort((a, b) => a[0] - b[0]);
  t.comment(
    `${sent} requests in ${seconds.toFixed(1)} s; answers by status: ${counts.map(([s, n]) => `${s}: ${n}`).join(', ')}`,
  );
  t.ok(sent >= Math.min(REQUESTS, 500), `${sent} requests sent within the time budget`);
  t.same(problems.slice(0, 20), [], `every answer is documented (${problems.length} were not)`);
  for (const problem of problems.slice(0, 20)) t.comment(problem);
  t.ok((statuses.get(200) ?? 0) > sent / 20, 'a share of the requests were served');

  // The server keeps serving: health, and the reference text.
  const health = await rawRequest(api.port, head('GET /healthz HTTP/1.1'));
  t.equal(health.status, 200);
  const body = JSON.stringify({
    prompt: 'Once upon a time',
    steps: 64,
    temperature: 0,
    echo: true,
  });
  const reference = await rawRequest(
    api.port,
    head('POST /v1/completions HTTP/1.1', {
      authorization: `Bearer ${KEY}`,
      'content-type': 'application/json',
      'content-length': String(body.length),
    }) + body,
  );
  t.equal(reference.status, 200, reference.body.slice(0, 300));
  t.equal(
    `${JSON.parse(reference.body).choices[0].text}\n`,
    await readFile(STORIES260K.refOnceUponATime, 'utf8'),
    'the reference completion after the fuzz',
  );
  t.equal(api.scheduler.active, 0, 'no sequence left behind');
  t.equal(({} as { polluted?: number }).polluted, undefined, 'no prototype was polluted');
});
