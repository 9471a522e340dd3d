/**
 * `swarmbee up`: the quick start. A coordinator in this process plus N worker
 * processes on loopback, the plan printed as a table, a demo completion with
 * its speed, then the API served until Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Coordinator } from '@swarmbee/coordinator';
import { InvalidArgumentError } from '@swarmbee/core';
import { cacheRoot } from '@swarmbee/model';
import type { Argv } from 'yargs';
import { resolveModel } from '../model-arg.js';
import { parseHostPort } from '../options.js';
import { TOKEN_ENV } from '../token.js';
import { logger, untilSignal } from '../ui/log.js';
import { withProgress } from '../ui/progress.js';
import { deploymentTable } from './cluster-table.js';

const CLI_BIN = fileURLToPath(new URL('../../bin/swarmbee.js', import.meta.url));
/** Time a worker gets to exit after SIGTERM before it is killed, ms. */
const WORKER_EXIT_GRACE_MS = 5000;

export function upCommand(yargs: Argv): Argv {
  return yargs.command(
    'up',
    'Start a local cluster on loopback (coordinator + N worker processes), run a demo prompt, serve the API',
    (y) =>
      y
        .option('model', {
          type: 'string',
          describe: 'Model dir (default: the embedded default model, random weights)',
        })
        .option('workers', { type: 'number', default: 2, describe: 'Worker processes to start' })
        .option('api', {
          type: 'string',
          default: '127.0.0.1:8080',
          describe: 'HTTP API address HOST:PORT (port 0 = any free port)',
        })
        .option('threads', {
          type: 'number',
          default: 1,
          describe: 'onnxruntime threads per worker',
        })
        .option('prompt', {
          type: 'string',
          default: 'Once upon a time',
          describe: 'Demo prompt run once the cluster is ready ("" to skip)',
        })
        .option('steps', {
          type: 'number',
          default: 128,
          describe: 'Positions for the demo, prompt included (run.c -n)',
        })
        .option('temperature', {
          type: 'number',
          default: 0,
          describe: 'Demo sampling temperature (0 = greedy)',
        })
        .option('serve', {
          type: 'boolean',
          default: true,
          describe: 'Keep serving the API after the demo (--no-serve exits)',
        }),
    async (args) => {
      if (!Number.isInteger(args.workers) || args.workers < 1)
        throw new InvalidArgumentError(`--workers must be a positive integer, got ${args.workers}`);
      const api = parseHostPort(args.api, 'api');
      const log = logger('up');
      const model = await resolveModel(args.model, (line) => process.stderr.write(`${line}\n`));
      const token = randomBytes(24).toString('base64url');
      const root = join(cacheRoot(), 'up');
      const coordinator = new Coordinator({
        model,
        token,
        listenPort: 0,
        apiHost: api.host,
        apiPort: api.port,
        minWorkers: args.workers,
        cacheDir: join(root, 'coordinator'),
        deploy: { stage: { intraOpThreads: args.threads } },
        log: logger('coordinator'),
      });
      const workers: ChildProcess[] = [];
      const stopping = untilSignal();
      try {
        await coordinator.start();
        for (let i = 0; i < args.workers; i++)
          workers.push(startWorker(i, coordinator.workersUrl, token, join(root, `worker-${i}`)));
        const ready = withProgress(() => coordinator.whenReady());
        const exited = Promise.race(
          workers.map(
            (w) =>
              new Promise<never>((_, reject) =>
                w.once('exit', (code) =>
                  reject(
                    new InvalidArgumentError(
                      `a worker exited early with code ${code}; see its log above`,
                    ),
                  ),
                ),
              ),
          ),
        );
        const first = await Promise.race([ready.then(() => 'ready' as const), stopping, exited]);
        if (first !== 'ready') return;
        process.stdout.write(
          `\nPlan for ${model.manifest.name} over ${args.workers} worker(s):\n${deploymentTable(coordinator.deployment)}\n`,
        );
        if (args.prompt !== '') await demo(coordinator, args.prompt, args.steps, args.temperature);
        process.stdout.write(
          `\nAPI: ${coordinator.apiUrl}/v1  (metrics: ${coordinator.apiUrl}/metrics)\n`,
        );
        if (!args.serve) return;
        process.stdout.write(
          `Try: curl ${coordinator.apiUrl}/v1/completions -H 'content-type: application/json' -d '{"prompt":"Once upon a time","max_tokens":64}'\nCtrl-C stops the cluster.\n`,
        );
        log(`${await stopping}: stopping the cluster`);
      } finally {
        await coordinator.stop({ stopWorkers: true });
        await Promise.all(workers.map(stopWorker));
      }
    },
  );
}

function startWorker(
  index: number,
  coordinatorUrl: string,
  token: string,
  cacheDir: string,
): ChildProcess {
  const name = `worker-${index}`;
  const child = spawn(
    process.execPath,
    [
      CLI_BIN,
      'worker',
      '--join',
      coordinatorUrl,
      '--name',
      name,
      '--listen',
      '127.0.0.1:0',
      '--cache-dir',
      cacheDir,
    ],
    {
      env: { ...process.env, [TOKEN_ENV]: token },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_EXIT_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

async function demo(
  coordinator: Coordinator,
  prompt: string,
  steps: number,
  temperature: number,
): Promise<void> {
  process.stdout.write(`\n`);
  const result = await coordinator.service.complete(
    { prompt, steps, sampling: { temperature, topK: 0, topP: 1 }, echo: true },
    { onText: (text) => process.stdout.write(text) },
  );
  process.stdout.write(
    `\n\n${result.completionTokens} tokens; first token after ${result.firstTokenMs.toFixed(0)} ms, then ${result.tokensPerSecond.toFixed(1)} tokens/s\n`,
  );
}
