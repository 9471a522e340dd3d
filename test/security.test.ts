/** Cluster security end to end: TLS from certificate files, the API key, refused tokens. */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import {
  COORDINATOR_EVENTS,
  type CoordinatorStateEvent,
  type ListeningEvent,
} from '@swarmbee/coordinator';
import { type AuthFailedDiagnostic, DIAGNOSTICS } from '@swarmbee/protocol';
import { type ServingEvent, WORKER_EVENTS } from '@swarmbee/worker';
import t from 'tap';
import { importStories260k, runCli } from './helpers/cli.js';
import { startCluster, startProcess } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

/** POSTs JSON over https trusting `ca`. */
function postHttps(
  url: string,
  body: unknown,
  ca: Buffer,
): Promise<{ status: number; json: { choices: { text: string }[] } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (chunk) => {
          data += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

t.test(
  'TLS: workers, stage links and the API run over wss:// and https:// from certificate files',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cert = join(root, 'cert.pem');
    const key = join(root, 'key.pem');
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
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const tls = ['--tls-cert', cert, '--tls-key', key, '--tls-ca', cert];
    const token = 'tls-test-token';
    const coordinator = startProcess(
      [
        'coordinator',
        '--model',
        model,
        '--listen',
        '127.0.0.1:0',
        '--api',
        '127.0.0.1:0',
        '--min-workers',
        '2',
        '--planner',
        'even',
        '--cache-dir',
        join(root, 'c'),
        '--log-format',
        'json',
        ...tls,
      ],
      { SWARMBEE_TOKEN: token },
    );
    t.teardown(() => coordinator.stop());
    const { workersUrl, apiUrl } = await coordinator.waitForEvent<ListeningEvent>(
      COORDINATOR_EVENTS.listening,
    );
    t.match(workersUrl, /^wss:\/\//);
    t.match(apiUrl, /^https:\/\//);
    const workers = [0, 1].map((i) =>
      startProcess(
        [
          'worker',
          '--join',
          workersUrl,
          '--name',
          `tls-${i}`,
          '--listen',
          '127.0.0.1:0',
          '--cache-dir',
          join(root, `w${i}`),
          '--log-format',
          'json',
          ...tls,
        ],
        { SWARMBEE_TOKEN: token },
      ),
    );
    t.teardown(() => Promise.all(workers.map((w) => w.stop())));
    for (const worker of workers)
      t.match(
        (await worker.waitForEvent<ServingEvent>(WORKER_EVENTS.serving)).dataUrl,
        /^wss:\/\//,
      );
    await coordinator.waitForEvent<CoordinatorStateEvent>(COORDINATOR_EVENTS.state, {
      match: (e) => e.to === 'ready',
    });
    const result = await postHttps(
      `${apiUrl}/v1/completions`,
      { prompt: 'Once upon a time', steps: 64, temperature: 0, echo: true },
      await readFile(cert),
    );
    t.equal(result.status, 200);
    t.equal(
      `${result.json.choices[0]!.text}\n`,
      await readFile(STORIES260K.refOnceUponATime, 'utf8'),
      'the reference text, over TLS end to end',
    );
  },
);

t.test('API key: /v1 and /swarmbee routes need it; health does not', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await importStories260k(root);
  const cluster = await startCluster({
    model,
    workers: 1,
    root,
    coordinatorArgs: ['--api-key', 'sesame'],
  });
  t.teardown(() => cluster.stop());
  const body = JSON.stringify({ prompt: 'Hi', max_tokens: 4 });
  const headers = { 'content-type': 'application/json' };
  const denied = await fetch(`${cluster.apiUrl}/v1/completions`, { method: 'POST', headers, body });
  t.equal(denied.status, 401);
  t.equal(
    ((await denied.json()) as { error: { code: string } }).error.code,
    'SWARMBEE_ERR_UNAUTHORIZED',
  );
  const wrong = await fetch(`${cluster.apiUrl}/swarmbee/cluster`, {
    headers: { authorization: 'Bearer nope' },
  });
  t.equal(wrong.status, 401);
  const allowed = await fetch(`${cluster.apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { ...headers, authorization: 'Bearer sesame' },
    body,
  });
  t.equal(allowed.status, 200);
  t.equal((await fetch(`${cluster.apiUrl}/healthz`)).status, 200);
});

t.test(
  'WRONG TOKEN - a worker with a wrong or missing token is refused, logged, and stops',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startCluster({
      model,
      workers: 1,
      root,
    });
    t.teardown(() => cluster.stop());
    const intruder = startProcess(
      [
        'worker',
        '--join',
        cluster.workersUrl,
        '--name',
        'intruder',
        '--cache-dir',
        join(root, 'x'),
      ],
      { SWARMBEE_TOKEN: 'not-the-token' },
    );
    t.equal(
      await new Promise((resolve) => intruder.child.once('exit', resolve)),
      1,
      'the worker exits with an error',
    );
    t.match(intruder.log(), /SWARMBEE_ERR_AUTH_FAILED/);
    await cluster.coordinator.waitForEvent<AuthFailedDiagnostic>(DIAGNOSTICS.authFailed, {
      match: (e) => e.name === 'intruder' && e.code === 'SWARMBEE_ERR_AUTH_FAILED',
    });
    const missing = await runCli(
      ['worker', '--join', cluster.workersUrl, '--name', 'anon', '--cache-dir', join(root, 'y')],
      { env: { SWARMBEE_TOKEN: '' } },
    );
    t.equal(missing.code, 1);
    t.match(missing.stderr, /SWARMBEE_ERR_INVALID_ARGUMENT.*cluster token is required/);
  },
);
