/** The coordinator's options and recovery records (its states: coordinator-state.ts). */

import { InvalidArgumentError, type Plan } from '@swarmbee/core';
import type { SchedulerOptions } from '@swarmbee/engine';
import {
  checkAdapterNames,
  checkMergeable,
  type ModelDir,
  type NamedAdapter,
  type ProgressFn,
  planLoraStacks,
  requireLlamaDir,
} from '@swarmbee/model';
import type {
  ChannelOptions,
  ClientTlsOptions,
  LinkShape,
  ServerTlsOptions,
} from '@swarmbee/protocol';
import type { IntakeTimeouts } from '../api/intake.js';
import { checkDriftOptions, type DriftOptions } from '../drift/drift-monitor.js';
import type { ServiceLimits } from '../generation-service.js';
import type { DeployOptions } from './deployer.js';
import { checkGivenPlan } from './given-plan.js';
import { checkPlanning, type PlanningOptions } from './planning.js';
import { checkReplanPolicy } from './replan-policy.js';

/** A LoRA adapter the coordinator serves, by its name: the API's model `<model>:<name>`. */
export type ServedAdapter = NamedAdapter;

export interface CoordinatorOptions {
  model: ModelDir;
  /**
   * A LoRA adapter merged into every shard as it is built (`--merge-adapter NAME=DIR`): the API
   * serves `<model>:<name>` alone. Not with `adapters`. Default: none.
   */
  adapter?: ServedAdapter;
  /**
   * LoRA adapters served unmerged beside the base model (`--adapter NAME=DIR`, repeated): a
   * request picks one by its `model` field, `<model>:<name>`, and the rest of the batch runs
   * with theirs. Any base precision. Default: none.
   */
  adapters?: readonly ServedAdapter[];
  /** Cluster join token workers must prove they hold. */
  token: string;
  /** Worker-facing WebSocket address. Default 127.0.0.1:7070 (use 0.0.0.0 for a LAN). */
  listenHost?: string;
  listenPort?: number;
  /** URL workers use to reach this coordinator, when it differs from the listen address. */
  advertiseUrl?: string;
  /** HTTP API address. Default 127.0.0.1:8080. */
  apiHost?: string;
  apiPort?: number;
  /** Require this bearer key on /v1 and /swarmbee routes. Default: none. */
  apiKey?: string;
  /** Directory of `swarmbee bench` reports the console lists as recent runs. Default: none. */
  benchDir?: string;
  /** Workers to wait for before the first deployment. Default 1. */
  minWorkers?: number;
  /** Where the coordinator keeps the shards it builds. */
  cacheDir: string;
  scheduler?: SchedulerOptions;
  limits?: Partial<ServiceLimits>;
  /** Threads that tokenize prompts off the event loop. Default 2. */
  tokenizerThreads?: number;
  /** How long API clients may take to send headers and whole requests. Defaults: the API's. */
  http?: IntakeTimeouts;
  deploy?: DeployOptions;
  /** How plans are chosen. Default: profile the workers, then the DP for throughput. */
  planning?: PlanningOptions;
  /**
   * A plan to deploy whenever every device it names is connected (`--plan`), checked
   * against the model (see given-plan.ts); without one of them, `planning` decides.
   * Default: none.
   */
  plan?: Plan;
  /** Heartbeats, frame and queue limits of every connection. Defaults: the protocol's. */
  channel?: ChannelOptions;
  /** Benchmarks and tests only: shape the coordinator's outgoing data-plane links. */
  linkShape?: LinkShape;
  /** How often to poll workers for their stage metrics, ms. Default 2000. */
  statsIntervalMs?: number;
  /**
   * Smallest predicted gain (0.1 = 10 % more tokens/s, or less time per token) for which a
   * worker that joins while serving is taken into a new plan. Default 0.1.
   */
  replanGain?: number;
  /**
   * A re-plan (a worker joined, or drift) must gain back within this time what the streams
   * lose while its new stages' weights move: predicted gain × this ≥ the transfer time, ms.
   * Default 30000.
   */
  replanPaybackMs?: number;
  /**
   * The closed loop on the serving plan: stages whose measured time per forward stays off the
   * prediction are re-profiled from live metrics and the plan re-planned when that pays.
   * Default: on, 15 % over 2 polls, at most one re-plan per 30 s.
   */
  drift?: DriftOptions;
  /** Serve wss:// to workers and https:// for the API with this certificate. Default: plain. */
  tls?: ServerTlsOptions;
  /** How to check workers' wss:// certificates (a cluster CA). Default: the system's CAs. */
  clientTls?: ClientTlsOptions;
  log?: (line: string) => void;
  progress?: ProgressFn;
}

export const DEFAULT_COORDINATOR_PORT = 7070;
export const DEFAULT_API_PORT = 8080;
export const DEFAULT_STATS_INTERVAL_MS = 2000;
/** Attempts to bring up a plan when workers keep failing during deployment. */
export const MAX_DEPLOY_ATTEMPTS = 3;

export interface RecoveryEvent {
  /** Why the cluster was reconfigured: a loss, a fault, a returning worker, a request. */
  reason: string;
  /** When it finished (epoch ms). */
  at: number;
  /** The workers the new plan runs on, in stage order. */
  workers: string[];
  /** From the loss (or re-plan request) to the new pipeline accepting batches. */
  durationMs: number;
  /** Sequences replayed into the new pipeline. */
  replayed: number;
}

/** Throws InvalidArgumentError naming the first option out of range. */
export function checkCoordinatorOptions(options: CoordinatorOptions): void {
  if ((options.minWorkers ?? 1) < 1)
    throw new InvalidArgumentError('--min-workers must be at least 1');
  checkReplanPolicy({ gain: options.replanGain, paybackMs: options.replanPaybackMs });
  checkPlanning(options.planning ?? {});
  if (options.plan)
    checkGivenPlan(options.plan, options.model, {
      adapter: options.adapter !== undefined || (options.adapters?.length ?? 0) > 0,
      ...(options.planning?.workload?.kvDtype
        ? { kvDtype: options.planning.workload.kvDtype }
        : {}),
    });
  if (options.drift) checkDriftOptions(options.drift);
  if (options.adapter) {
    if (options.adapters?.length)
      throw new InvalidArgumentError(
        '--merge-adapter and --adapter do not mix: serve one adapter merged, or several beside the base',
      );
    checkAdapterNames([options.adapter.name]);
    checkMergeable(requireLlamaDir(options.model, '--merge-adapter'), options.adapter.adapter);
  }
  const parallelism = options.planning?.parallelism ?? 'pipeline';
  if ((options.adapter || options.adapters?.length) && parallelism !== 'pipeline')
    throw new InvalidArgumentError(
      `--parallelism ${parallelism} plans tensor-parallel groups, whose members serve the base weights only; serve adapters with --parallelism pipeline`,
    );
  if (options.adapters?.length) {
    // Every adapter checked against the model now, before any shard is built.
    const model = requireLlamaDir(options.model, '--adapter');
    planLoraStacks(options.adapters, model.manifest, {
      start: 0,
      end: model.manifest.config.nLayers,
    });
  }
  const stall = options.deploy?.transferStallTimeoutMs;
  if (stall !== undefined && !(stall > 0))
    throw new InvalidArgumentError(`--transfer-stall-timeout-ms must be above 0, got ${stall}`);
}
