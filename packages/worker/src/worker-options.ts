/** The worker daemon's options, and the engine settings they give every stage. */
import type { DeviceEmulation, StageOptions } from '@swarmbee/engine';
import type {
  ChannelOptions,
  ClientTlsOptions,
  LinkShape,
  ServerTlsOptions,
} from '@swarmbee/protocol';
import type { DataOwnerOptions } from './federated-owner.js';
import type { OpenShardFile } from './incoming-shard.js';

export interface WorkerOptions {
  /** Coordinator URL, e.g. ws://192.168.1.10:7070. */
  coordinatorUrl: string;
  /** Cluster join token. */
  token: string;
  /** Worker name, unique in the cluster. Default: the host name. */
  name?: string;
  /** Shard cache directory. */
  cacheDir: string;
  /** Data-plane listen address. Default 127.0.0.1. */
  listenHost?: string;
  /** Data-plane listen port. Default 0: any free port. */
  listenPort?: number;
  /** Host name other stages use to reach this worker. Default: the listen host. */
  advertiseHost?: string;
  /** onnxruntime intra-op threads. Default: all cores. */
  threads?: number;
  /**
   * Make this worker a data owner (`--train-data FILE --model DIR`): it trains federated
   * rounds on its own data with the whole model and takes no inference stage. Default: none.
   */
  dataOwner?: DataOwnerOptions;
  /** onnxruntime execution provider (cpu, cuda, ...). Default cpu. */
  executionProvider?: string;
  /** Bytes this worker offers for weights plus KV cache. Default: 90 % of the memory free when profiled. */
  memoryLimitBytes?: number;
  /**
   * Benchmarks and tests only: run every stage engine (serving and profiling) as on an
   * emulated slower device, whose speed may change mid-run. Default: none (this machine's speed).
   */
  emulation?: DeviceEmulation;
  /** KV-cache budget of the stage, bytes. Default: the engine's (2 GiB). */
  kvBudgetBytes?: number;
  /** Most sequences the stage keeps a cache for. Default: the engine's (256). */
  maxSequences?: number;
  /** Benchmarks and tests only: shape this worker's outgoing data-plane links. Default: none. */
  linkShape?: LinkShape;
  /**
   * Bytes of received shard chunks that may wait for the disk before the worker stops
   * reading its control connection (the coordinator's sends then wait). Default 16 MiB.
   */
  maxPendingShardBytes?: number;
  /** A partial shard transfer left untouched this long is deleted, ms. Default 86400000 (a day). */
  partialShardMaxAgeMs?: number;
  /** Tests only: how received shard files are opened for writing (a slowed disk). Default: the file itself. */
  openShardFile?: OpenShardFile;
  /** Heartbeats, frame and queue limits of every connection. Defaults: the protocol's. */
  channel?: ChannelOptions;
  /** Delay before re-joining a lost coordinator, ms; doubles up to 10 s. Default 500. */
  rejoinDelayMs?: number;
  /** On stop, the longest wait for the work in hand and for unloading the stage, ms. Default 10000. */
  drainTimeoutMs?: number;
  tls?: { server?: ServerTlsOptions; client?: ClientTlsOptions };
  log?: (line: string) => void;
}

export const DEFAULT_REJOIN_DELAY_MS = 500;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** The longest pause between attempts to re-join, ms: a restarted coordinator is found within it. */
export const MAX_REJOIN_DELAY_MS = 10_000;

/** Engine settings shared by serving and profiling, so a profile measures what serving runs. */
export function engineOptions(o: WorkerOptions): StageOptions {
  const options: StageOptions = {};
  if (o.threads !== undefined) options.intraOpThreads = o.threads;
  if (o.executionProvider !== undefined) options.executionProvider = o.executionProvider;
  if (o.kvBudgetBytes !== undefined) options.kvBudgetBytes = o.kvBudgetBytes;
  if (o.maxSequences !== undefined) options.maxSequences = o.maxSequences;
  return options;
}
