/** `swarmbee worker`: the stage daemon a device runs. */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, installFaultHandlers } from '@swarmbee/core';
import { executionProviders } from '@swarmbee/engine';
import { cacheRoot, openModelDir, requireLlamaDir } from '@swarmbee/model';
import { discoverCoordinator, WorkerDaemon } from '@swarmbee/worker';
import type { Argv } from 'yargs';
import {
  channelFrom,
  deviceEmulationFrom,
  deviceEmulationOptions,
  heartbeatOptions,
  linkShapeFrom,
  linkShapeOptions,
} from '../bench-flags.js';
import { parseHostPort } from '../options.js';
import {
  clientTlsFrom,
  frameLimitFrom,
  frameLimitOption,
  serverTlsFrom,
  stageLimitOptions,
  tlsOptions,
} from '../service-flags.js';
import { resolveToken, tokenOptions } from '../token.js';
import { logFormatOption, logger, shutdownGraceOption, untilSignal } from '../ui/log.js';
import { logProtocolEvents } from '../ui/protocol-log.js';
import { logWorkerEvents } from '../ui/worker-log.js';

export function workerCommand(yargs: Argv): Argv {
  return yargs.command(
    'worker',
    'Run a stage worker: join a coordinator, receive a shard, serve forward passes',
    (y) =>
      y
        .option('join', {
          type: 'string',
          describe: 'Coordinator URL, e.g. ws://192.168.1.10:7070 (or --discover)',
        })
        .option('discover', {
          type: 'boolean',
          // No default: yargs counts a defaulted flag as given when checking conflicts.
          conflicts: 'join',
          describe:
            'Find the coordinator on the LAN by mDNS (_swarmbee._tcp; start it with --mdns) instead of --join (default: off)',
        })
        .option('listen', {
          type: 'string',
          default: '127.0.0.1:0',
          describe: 'Data-plane address HOST:PORT (0.0.0.0:7071 to serve a LAN; port 0 = any)',
        })
        .option('advertise', {
          type: 'string',
          describe:
            "Host name or IP other stages use to reach this worker (default: the listen host; for 0.0.0.0, this machine's first external IPv4 address)",
        })
        .option('name', {
          type: 'string',
          describe: 'Worker name, unique in the cluster (default: the host name)',
        })
        .option('cache-dir', {
          type: 'string',
          describe: 'Shard cache directory (default: <cache>/worker/<name>)',
        })
        .option('threads', { type: 'number', describe: 'onnxruntime threads (default: all cores)' })
        .option('execution-provider', {
          type: 'string',
          default: 'cpu',
          describe:
            'onnxruntime execution provider: cpu, cuda, tensorrt, ... (checked at start; CPU takes what it lacks)',
        })
        .option('memory-limit-mib', {
          type: 'number',
          describe:
            'Memory offered for weights and KV cache, MiB (default: 90% of free memory when profiled)',
        })
        .option('train-data', {
          type: 'string',
          describe:
            'Make this worker a data owner: JSONL records it trains federated rounds on (they never leave it); needs --model',
        })
        .option('model', {
          type: 'string',
          describe:
            "With --train-data: the whole model dir a data owner trains (the coordinator's model)",
        })
        .options(deviceEmulationOptions)
        .options(stageLimitOptions)
        .options(shutdownGraceOption)
        .options(logFormatOption)
        .options(frameLimitOption)
        .options(tlsOptions)
        .options(linkShapeOptions)
        .options(heartbeatOptions)
        .options(tokenOptions),
    async (args) => {
      const { host, port } = parseHostPort(args.listen, 'listen');
      const name = args.name ?? hostname();
      const log = logger(`worker ${name}`, { format: args.logFormat });
      installFaultHandlers(log);
      const stopping = untilSignal({ graceMs: args.shutdownGraceMs, log });
      logProtocolEvents(log);
      logWorkerEvents(log, name);
      // Refuse an unavailable provider now, not when the first shard loads.
      executionProviders(args.executionProvider);
      const token = resolveToken(args);
      let coordinatorUrl = args.join;
      if (coordinatorUrl === undefined) {
        if (!args.discover)
          throw new InvalidArgumentError(
            'pass --join ws://COORDINATOR:7070, or --discover to find the coordinator on the LAN',
          );
        const abort = new AbortController();
        void stopping.then(() => abort.abort());
        const found = await discoverCoordinator({ token, signal: abort.signal, log });
        log(`found "${found.name}" on the LAN: joining ${found.url}`);
        coordinatorUrl = found.url;
      }
      const emulation = deviceEmulationFrom(args, log);
      if ((args.trainData === undefined) !== (args.model === undefined))
        throw new InvalidArgumentError(
          '--train-data and --model go together: a data owner trains its own records on the whole model',
        );
      const dataOwner =
        args.trainData === undefined
          ? undefined
          : {
              data: args.trainData,
              model: requireLlamaDir(await openModelDir(args.model!), 'a data owner'),
            };
      const worker = new WorkerDaemon({
        ...(dataOwner ? { dataOwner } : {}),
        coordinatorUrl,
        token,
        name,
        cacheDir: args.cacheDir ?? join(cacheRoot(), 'worker', name),
        listenHost: host,
        listenPort: port,
        advertiseHost: args.advertise,
        threads: args.threads,
        executionProvider: args.executionProvider,
        ...(args.memoryLimitMib === undefined
          ? {}
          : { memoryLimitBytes: args.memoryLimitMib * 2 ** 20 }),
        ...(emulation.emulation ? { emulation: emulation.emulation } : {}),
        ...(args.maxSequences === undefined ? {} : { maxSequences: args.maxSequences }),
        ...(args.kvBudgetMib === undefined ? {} : { kvBudgetBytes: args.kvBudgetMib * 2 ** 20 }),
        tls: { server: serverTlsFrom(args), client: clientTlsFrom(args) },
        linkShape: linkShapeFrom(args),
        channel: { ...channelFrom(args), ...frameLimitFrom(args) },
        log,
      });
      // It says `serving stage traffic on <url>` (WORKER_EVENTS.serving) once it has joined.
      const started = worker.start();
      // Ends on a signal, or when the worker stops itself (told to, or refused for good:
      // then its coded error ends the command with status 1).
      try {
        const signal = await Promise.race([
          stopping,
          started.then(() => Promise.race([stopping, worker.whenStopped()])),
        ]);
        log(signal ? `${signal}: draining and stopping` : 'stopped by the coordinator');
        await worker.stop();
      } finally {
        emulation.stop();
      }
    },
  );
}
