/**
 * `swarmbee up`: the quick start. A coordinator in this process plus N worker
 * processes on loopback, the plan printed as a table, a demo completion with
 * its speed, then the API served until Ctrl-C.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Coordinator } from '@swarmbee/coordinator';
import { installFaultHandlers } from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import { cacheRoot } from '@swarmbee/model';
import type { Argv } from 'yargs';
import { adapterOptions, servedAdapters } from '../adapter-flag.js';
import { resolveModel } from '../model-arg.js';
import { parseHostPort } from '../options.js';
import { logCoordinatorEvents } from '../ui/coordinator-log.js';
import { logger, shutdownGraceOption, untilSignal } from '../ui/log.js';
import { withProgress } from '../ui/progress.js';
import { deploymentTable } from './cluster-table.js';

export const CLI_BIN = fileURLToPath(new URL('../../bin/swarmbee.js', import.meta.url));

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
        .option('planner', {
          choices: ['even', 'dp', 'ga', 'pso', 'auto', 'solo', 'memory'] as const,
          default: 'even' as const,
          describe:
            'How layers are assigned; even shows the pipeline over every worker, dp lets the planner choose (profiling first)',
        })
        .options(adapterOptions)
        .options(shutdownGraceOption)
        .option('serve', {
          type: 'boolean',
          default: true,
          describe: 'Keep serving the API after the demo (--no-serve exits)',
        }),
    async (args) => {
      const stopping = untilSignal({ graceMs: args.shutdownGraceMs, log: logger('up') });
      const api = parseHostPort(args.api, 'api');
      installFaultHandlers(logger('up'));
      const model = await resolveModel(args.model, (line) => process.stderr.write(`${line}\n`));
      const adapters = await servedAdapters(args);
      const abort = new AbortController();
      void stopping.then(() => abort.abort(new Error('interrupted')));
      const coordinatorLog = logger('coordinator');
      const stopLogging = logCoordinatorEvents(coordinatorLog);
      const cluster = await withProgress(() =>
        LocalCluster.start(
          {
            model,
            workers: args.workers,
            cliBin: CLI_BIN,
            cacheDir: join(cacheRoot(), 'up'),
            threads: args.threads,
            apiHost: api.host,
            apiPort: api.port,
            log: coordinatorLog,
            coordinator: { planning: { planner: args.planner }, ...adapters },
          },
          abort.signal,
        ),
      );
      try {
        const { coordinator } = cluster;
        process.stdout.write(
          `\nPlan for ${coordinator.modelName} over ${args.workers} worker(s):\n${deploymentTable(coordinator.deployment)}\n`,
        );
        if (args.prompt !== '' && !model.manifest.tokenizer)
          process.stdout.write(
            `\n${model.manifest.name} has no tokenizer: no text demo; send prompts to the API as token ids\n`,
          );
        else if (args.prompt !== '')
          await demo(coordinator, args.prompt, args.steps, args.temperature);
        process.stdout.write(
          `\nAPI: ${coordinator.apiUrl}/v1  (console: ${coordinator.apiUrl}/, metrics: ${coordinator.apiUrl}/metrics)\n`,
        );
        if (!args.serve) return;
        process.stdout.write(
          `Try: curl ${coordinator.apiUrl}/v1/completions -H 'content-type: application/json' -d '{"prompt":"Once upon a time","max_tokens":64}'\nCtrl-C stops the cluster.\n`,
        );
        logger('up')(`${await stopping}: stopping the cluster`);
      } finally {
        await cluster.stop();
        stopLogging();
      }
    },
  );
}

async function demo(
  coordinator: Coordinator,
  prompt: string,
  steps: number,
  temperature: number,
): Promise<void> {
  process.stdout.write('\n');
  const result = await coordinator.service.complete(
    { prompt, steps, sampling: { temperature, topK: 0, topP: 1 }, echo: true },
    { onText: (text) => process.stdout.write(text) },
  );
  process.stdout.write(
    `\n\n${result.completionTokens} tokens; first token after ${result.firstTokenMs.toFixed(0)} ms, then ${result.tokensPerSecond.toFixed(1)} tokens/s\n`,
  );
}
