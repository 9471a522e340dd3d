/** `swarmbee coordinator`: accepts workers, deploys the model over them, serves the API. */
import { join } from 'node:path';
import {
  announceCoordinator,
  Coordinator,
  DEFAULT_DRIFT_MIN_INTERVAL_MS,
  DEFAULT_DRIFT_THRESHOLD,
  DEFAULT_DRIFT_WINDOWS,
  DEFAULT_REPLAN_GAIN,
  DEFAULT_REPLAN_PAYBACK_MS,
  DEFAULT_TRANSFER_STALL_TIMEOUT_MS,
  readGivenPlan,
} from '@swarmbee/coordinator';
import { installFaultHandlers, stageDevices } from '@swarmbee/core';
import { cacheRoot, openModelDir } from '@swarmbee/model';
import type { Argv } from 'yargs';
import { adapterOptions, servedAdapters } from '../adapter-flag.js';
import { channelFrom, heartbeatOptions, linkShapeFrom, linkShapeOptions } from '../bench-flags.js';
import { parseHostPort, planningFrom } from '../options.js';
import {
  clientTlsFrom,
  frameLimitFrom,
  frameLimitOption,
  httpTimeoutOptions,
  httpTimeoutsFrom,
  serverTlsFrom,
  serviceLimitOptions,
  serviceLimitsFrom,
  tlsOptions,
} from '../service-flags.js';
import { resolveToken, tokenOptions } from '../token.js';
import { logCoordinatorEvents } from '../ui/coordinator-log.js';
import { logFormatOption, logger, shutdownGraceOption, untilSignal } from '../ui/log.js';
import { logProtocolEvents } from '../ui/protocol-log.js';
import { deploymentTable } from './cluster-table.js';

export function coordinatorCommand(yargs: Argv): Argv {
  return yargs.command(
    'coordinator',
    'Run the coordinator: wait for workers, deploy the model over them, serve the OpenAI-compatible API',
    (y) =>
      y
        .option('model', { type: 'string', demandOption: true, describe: 'Model dir to serve' })
        .option('listen', {
          type: 'string',
          default: '127.0.0.1:7070',
          describe: 'Worker-facing address HOST:PORT (0.0.0.0:7070 to serve a LAN)',
        })
        .option('advertise-url', {
          type: 'string',
          describe: 'URL workers use to reach the coordinator, if not the listen address',
        })
        .option('api', {
          type: 'string',
          default: '127.0.0.1:8080',
          describe: 'HTTP API address HOST:PORT; the web console is served at / on it',
        })
        .option('api-key', {
          type: 'string',
          describe:
            'Require "Authorization: Bearer <key>" on the /v1 and /swarmbee routes; /healthz, /metrics and the console page at / stay open, and the page asks for the key (default: no key)',
        })
        .option('bench-dir', {
          type: 'string',
          describe:
            'Directory of `swarmbee bench` reports (its subdirectories holding a result.json) the console lists as recent runs, behind the API key (default: none listed)',
        })
        .option('min-workers', {
          type: 'number',
          default: 1,
          describe: 'Workers to wait for before deploying',
        })
        .option('threads', {
          type: 'number',
          describe: 'onnxruntime threads per stage (default: each worker uses all its cores)',
        })
        .option('cache-dir', {
          type: 'string',
          describe: 'Where built shards are kept (default: <cache>/coordinator)',
        })
        .option('planner', {
          choices: ['dp', 'ga', 'pso', 'auto', 'solo', 'even', 'memory'] as const,
          default: 'dp' as const,
          describe:
            'How layers are assigned: dp (EdgeShard, exact), ga, pso, auto, or a baseline; even skips profiling',
        })
        .option('plan', {
          type: 'string',
          describe:
            "Deploy this plan (a JSON Plan: stages of layer ranges on named workers, a stage's `tensor` group split by its weights) whenever every worker it names is connected; checked against the model first (PLAN_INVALID names what is wrong). Without one of its workers, --planner plans. Waits for at least as many workers as it names (default: none)",
        })
        .option('objective', {
          choices: ['latency', 'throughput'] as const,
          default: 'throughput' as const,
          describe: 'What the plan optimizes',
        })
        .option('parallelism', {
          choices: ['pipeline', 'tensor', 'hybrid'] as const,
          default: 'pipeline' as const,
          describe:
            'How stages may run: pipeline (one worker each), tensor (every layer on one tensor-parallel group), hybrid (stages that may each be a group, as the objective decides: latency picks groups where links allow); needs --planner dp or auto',
        })
        .option('pin-first', {
          type: 'string',
          describe: 'Worker that must run stage 0 (raw tokens never leave it)',
        })
        .option('pin-last', { type: 'string', describe: 'Worker that must run the last stage' })
        .option('transfer-stall-timeout-ms', {
          type: 'number',
          default: DEFAULT_TRANSFER_STALL_TIMEOUT_MS,
          describe:
            'Give a shard transfer up when no chunk went out for this long, ms (a slow link that keeps moving never times out)',
        })
        .option('replan-gain', {
          type: 'number',
          default: DEFAULT_REPLAN_GAIN,
          describe:
            'Re-plan (a worker joined a serving cluster, or drift) only for a plan predicted this much better (0.1 = 10 % more tokens/s or less time per token)',
        })
        .option('replan-payback-ms', {
          type: 'number',
          default: DEFAULT_REPLAN_PAYBACK_MS,
          describe:
            "A re-plan (a worker joined, or drift) must gain back within this time what the streams lose while the new stages' weights move (predicted gain × this ≥ transfer time), ms",
        })
        .option('drift-threshold', {
          type: 'number',
          default: DEFAULT_DRIFT_THRESHOLD,
          describe:
            "Closed loop: when stages' measured time per forward stays this share off the profile's prediction (two stats polls), correct their profile from live metrics and re-plan if a plan is predicted --replan-gain better; 0 turns it off",
        })
        .option('drift-min-interval-ms', {
          type: 'number',
          default: DEFAULT_DRIFT_MIN_INTERVAL_MS,
          describe: 'Least time between two re-plans for drift, ms',
        })
        .option('drift-windows', {
          type: 'number',
          default: DEFAULT_DRIFT_WINDOWS,
          describe:
            'Consecutive stats polls a stage must stay off its prediction before the drift loop acts (hysteresis)',
        })
        .option('context', {
          type: 'number',
          describe:
            "Context the cluster serves, tokens: plans size the KV cache for it, its shards' RoPE tables hold that many positions, longer requests are refused (default: the model's)",
        })
        .options(adapterOptions)
        .option('kv-dtype', {
          choices: ['float32', 'float16'] as const,
          default: 'float32' as const,
          describe:
            "KV-cache element type of the model's Llama shards: float16 holds twice the context in the same memory (fidelity: docs/BENCHMARKS.md)",
        })
        .options(serviceLimitOptions)
        .options(httpTimeoutOptions)
        .options(shutdownGraceOption)
        .options(logFormatOption)
        .options(frameLimitOption)
        .options(tlsOptions)
        .options(linkShapeOptions)
        .options(heartbeatOptions)
        .option('mdns', {
          type: 'boolean',
          default: false,
          describe:
            'Announce this coordinator on the LAN (mDNS _swarmbee._tcp) for `swarmbee worker --discover`',
        })
        .options(tokenOptions),
    async (args) => {
      const log = logger('coordinator', { format: args.logFormat });
      installFaultHandlers(log);
      const stopping = untilSignal({ graceMs: args.shutdownGraceMs, log });
      const listen = parseHostPort(args.listen, 'listen');
      const api = parseHostPort(args.api, 'api');
      logProtocolEvents(log);
      logCoordinatorEvents(log);
      const token = resolveToken(args);
      const adapters = await servedAdapters(args);
      const model = await openModelDir(args.model);
      const plan = args.plan === undefined ? undefined : await readGivenPlan(args.plan, model);
      // A given plan waits for every worker it names.
      const minWorkers = Math.max(
        args.minWorkers,
        plan ? plan.stages.reduce((n, s) => n + stageDevices(s).length, 0) : 0,
      );
      const coordinator = new Coordinator({
        model,
        ...(plan ? { plan } : {}),
        ...adapters,
        token,
        listenHost: listen.host,
        listenPort: listen.port,
        advertiseUrl: args.advertiseUrl,
        apiHost: api.host,
        apiPort: api.port,
        apiKey: args.apiKey,
        benchDir: args.benchDir,
        minWorkers,
        cacheDir: args.cacheDir ?? join(cacheRoot(), 'coordinator'),
        deploy: {
          transferStallTimeoutMs: args.transferStallTimeoutMs,
          ...(args.threads === undefined ? {} : { stage: { intraOpThreads: args.threads } }),
        },
        replanGain: args.replanGain,
        replanPaybackMs: args.replanPaybackMs,
        drift: {
          threshold: args.driftThreshold,
          windows: args.driftWindows,
          minIntervalMs: args.driftMinIntervalMs,
        },
        planning: planningFrom(args),
        limits: serviceLimitsFrom(args),
        tokenizerThreads: args.tokenizerThreads,
        http: httpTimeoutsFrom(args),
        tls: serverTlsFrom(args),
        clientTls: clientTlsFrom(args),
        linkShape: linkShapeFrom(args),
        channel: { ...channelFrom(args), ...frameLimitFrom(args) },
        log,
      });
      await coordinator.start();
      log(`waiting for ${minWorkers} worker(s) at ${coordinator.workersUrl}`);
      const announcement = args.mdns
        ? announceCoordinator({
            token,
            port: Number(new URL(coordinator.workersUrl).port),
            url: args.advertiseUrl,
            onError: (error) => log(`mDNS: ${error.message}`),
          })
        : undefined;
      if (announcement) log(`announced on the LAN as "${announcement.name}" (mDNS _swarmbee._tcp)`);
      const ready = coordinator.whenReady().then(() => {
        process.stdout.write(
          `${deploymentTable(coordinator.deployment)}\nAPI: ${coordinator.apiUrl}/v1  (console: ${coordinator.apiUrl}/)\n`,
        );
      });
      ready.catch(() => {});
      const signal = await stopping;
      log(`${signal}: stopping`);
      await announcement?.stop();
      await coordinator.stop();
    },
  );
}
