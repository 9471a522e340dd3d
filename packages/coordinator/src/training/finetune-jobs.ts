/**
 * Fine-tuning jobs on the deployed cluster (`POST /swarmbee/finetune`, `swarmbee finetune
 * --url`): the coordinator holds the job's data and checkpoints in a directory of its
 * cache, runs @swarmbee/train's fine-tuning loop over a pipeline of the deployed stages
 * (cluster-pipeline.ts), and answers with the adapter's PEFT files. One job runs at a
 * time. Inference keeps serving meanwhile (its requests share the workers' cores with
 * the training calls). A lost worker costs the steps since the last checkpoint: the run
 * waits for the coordinator's redeployment, opens a pipeline on it and goes on from there.
 */
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterUnsupportedError,
  abortError,
  ClusterUnavailableError,
  type SwarmBeeError,
  stepSignal,
  TrainingBusyError,
} from '@swarmbee/core';
import { type ModelDir, requireLlamaDir, writePeftAdapter } from '@swarmbee/model';
import {
  type FinetuneEvent,
  type FinetuneResult,
  type FinetuneSettings,
  finetune,
} from '@swarmbee/train';
import type { Deployment } from '../cluster/deployment.js';
import type { Deployments } from '../cluster/deployments.js';
import type { WorkerLink } from '../cluster/worker-link.js';
import { COORDINATOR_EVENTS } from '../events.js';
import { openClusterPipeline, trainingPlacement } from './cluster-pipeline.js';
import {
  type FederatedEvent,
  type FederatedOutcome,
  type FederatedRequest,
  runFederated,
} from './federated-rounds.js';

/** How long a job waits for the coordinator to redeploy after losing a worker, ms, by default. */
export const DEFAULT_TRAINING_RECOVERY_TIMEOUT_MS = 120_000;

export interface FinetuneJobRequest {
  settings: FinetuneSettings;
  /** JSONL training records (text or chat). */
  data: string;
  /** JSONL files to report loss and perplexity on, by name. */
  evalData?: { name: string; text: string }[];
  /** Train the first and last stage on the coordinator's device (see cluster-pipeline.ts). */
  pinPrivate?: boolean;
}

/** A file of the trained adapter dir (PEFT's `adapter_config.json`, `adapter_model.safetensors`). */
export interface AdapterFile {
  name: string;
  /** Its bytes, base64. */
  base64: string;
}

export interface FinetuneJobResult {
  result: Omit<FinetuneResult, 'adapterDir' | 'checkpoint'>;
  /** Where each stage trained: `local` (the coordinator) or a worker's name. */
  placement: string[];
  adapter?: AdapterFile[];
}

export interface FederatedJobResult extends Omit<FederatedOutcome, 'adapter'> {
  /** Stopped before its last round. */
  stopped: boolean;
  adapter: AdapterFile[];
}

export interface FinetuneJobsOptions {
  model: ModelDir;
  /** The coordinator's cache dir; jobs live in its `finetune/` (their data is removed when they end). */
  cacheDir: string;
  workers: () => ReadonlyMap<string, WorkerLink>;
  /** Connected data owners (federated rounds). */
  owners: () => WorkerLink[];
  deployments: Deployments;
  /** The coordinator serves an adapter merged into its shards (`--adapter`). */
  servesAdapter: boolean;
  recoveryTimeoutMs?: number;
  /** Deadline of one training call on a worker, ms. */
  callTimeoutMs?: number;
}

export class FinetuneJobs {
  readonly #options: FinetuneJobsOptions;
  #running = false;
  #sessions = 0;

  constructor(options: FinetuneJobsOptions) {
    this.#options = options;
  }

  /**
   * Runs federated rounds over the connected data owners (see federated-rounds.ts) and
   * answers with the aggregated adapter's PEFT files. `signal` stops after the round in hand.
   */
  async federated(
    request: FederatedRequest,
    onEvent: (event: FederatedEvent) => void,
    signal?: AbortSignal,
  ): Promise<FederatedJobResult> {
    // Nothing of a federated job outlives it: the adapter is in the answer.
    return this.#exclusive(
      (dir) => dir,
      async (dir) => {
        const model = requireLlamaDir(this.#options.model, 'fine-tuning');
        const outcome = await runFederated(
          { model, owners: this.#options.owners },
          request,
          onEvent,
          signal,
        );
        await writePeftAdapter(join(dir, 'adapter'), outcome.adapter);
        return {
          rounds: outcome.rounds,
          bandits: outcome.bandits,
          stopped: signal?.aborted ?? false,
          adapter: await adapterFiles(join(dir, 'adapter')),
        };
      },
    );
  }

  /**
   * Runs one job to its end. `signal` stops it after the current step (a checkpoint is
   * written; no adapter is returned).
   */
  async run(
    request: FinetuneJobRequest,
    onEvent: (event: FinetuneEvent) => void,
    signal?: AbortSignal,
  ): Promise<FinetuneJobResult> {
    // The data never stays behind; the checkpoints of a job that did not finish do.
    return this.#exclusive(
      (dir) => join(dir, 'data'),
      (dir, id) => this.#run(request, dir, id, onEvent, signal),
    );
  }

  /**
   * Runs `work` as the one job of the cluster (another is TRAINING_BUSY meanwhile) in a
   * directory of its own under the cache, removing `leftover(dir)` when it ends.
   */
  async #exclusive<T>(
    leftover: (dir: string) => string,
    work: (dir: string, id: string) => Promise<T>,
  ): Promise<T> {
    if (this.#running)
      throw new TrainingBusyError('the cluster is already fine-tuning; one job trains at a time');
    this.#running = true;
    const id = randomUUID();
    const dir = join(this.#options.cacheDir, 'finetune', id);
    try {
      return await work(dir, id);
    } finally {
      this.#running = false;
      await rm(leftover(dir), { recursive: true, force: true });
    }
  }

  async #run(
    request: FinetuneJobRequest,
    dir: string,
    id: string,
    onEvent: (event: FinetuneEvent) => void,
    signal: AbortSignal | undefined,
  ): Promise<FinetuneJobResult> {
    const model = requireLlamaDir(this.#options.model, 'fine-tuning');
    if (this.#options.servesAdapter)
      throw new AdapterUnsupportedError(
        'this coordinator serves an adapter merged into its shards; fine-tuning trains on the base model: start it without --merge-adapter (adapters served with --adapter keep the base weights)',
      );
    const { deployments } = this.#options;
    await raceAbort(deployments.whenReady(), signal, 'the cluster to deploy');
    await mkdir(join(dir, 'data'), { recursive: true });
    const data = join(dir, 'data', 'train.jsonl');
    await writeFile(data, request.data);
    const names = new Map<string, string>();
    const evalData: string[] = [];
    for (const [i, set] of (request.evalData ?? []).entries()) {
      const path = join(dir, 'data', `eval-${i}.jsonl`);
      await writeFile(path, set.text);
      names.set(path, set.name);
      evalData.push(path);
    }
    const settings = request.settings;
    let used: Deployment | undefined;
    let placement: string[] = [];
    const out = join(dir, 'adapter');
    const result = await finetune({
      model,
      data,
      out,
      checkpointDir: join(dir, 'checkpoints'),
      evalData,
      // The deployment decides the stages; the setting only has to be valid.
      settings: { ...settings, stages: 1 },
      ...(signal ? { signal } : {}),
      onEvent: (event) =>
        onEvent(event.type === 'eval' ? { ...event, data: names.get(event.data) ?? '' } : event),
      openPipeline: async (adapter) => {
        const deployment = deployments.current;
        if (!deployment || deployment.faulted)
          throw new ClusterUnavailableError('no deployment is serving to train on');
        used = deployment;
        placement = trainingPlacement(deployment.stages, request.pinPrivate ?? false);
        return openClusterPipeline(adapter, {
          model,
          stages: deployment.stages,
          workers: this.#options.workers(),
          schedule: settings.pipelineSchedule,
          activations: settings.activations,
          weightDecay: settings.weightDecay,
          threads: settings.threads,
          pinPrivate: request.pinPrivate ?? false,
          session: `${id}-${++this.#sessions}`,
          callTimeoutMs: this.#options.callTimeoutMs,
        });
      },
      recoverable: (error) => this.#recoverable(error, used, signal),
    });
    const adapter = result.adapterDir ? await adapterFiles(result.adapterDir) : undefined;
    if (result.adapterDir) await rm(dir, { recursive: true, force: true });
    const { adapterDir: _dir, checkpoint: _checkpoint, ...figures } = result;
    return {
      result: {
        ...figures,
        eval: figures.eval.map((e) => ({ ...e, data: names.get(e.data) ?? '' })),
      },
      placement,
      ...(adapter ? { adapter } : {}),
    };
  }

  /**
   * A failed step can go on when its deployment broke and the coordinator brings up
   * another within the recovery timeout; a failure of a deployment still intact cannot.
   */
  async #recoverable(
    error: SwarmBeeError,
    used: Deployment | undefined,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    if (!error.retryable) return false;
    const { deployments } = this.#options;
    const current = deployments.current;
    if (current && current === used && !current.faulted && current.links.every((l) => l.open))
      return false;
    const timeoutMs = this.#options.recoveryTimeoutMs ?? DEFAULT_TRAINING_RECOVERY_TIMEOUT_MS;
    const deadline = stepSignal(timeoutMs, signal);
    try {
      for (;;) {
        await raceAbort(deployments.whenReady(), deadline, 'a redeployment');
        const next = deployments.current;
        if (next && next !== used && !next.faulted) return true;
        await nextDeployed(deadline);
      }
    } catch {
      return false;
    }
  }
}

/** Resolves at the coordinator's next `deployed` event; rejects when `signal` aborts first. */
function nextDeployed(signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = () => {
      unsubscribe(COORDINATOR_EVENTS.deployed, listener);
      signal.removeEventListener('abort', onAbort);
    };
    const listener = () => {
      settle();
      resolve();
    };
    const onAbort = () => {
      settle();
      reject(abortError(signal, 'a redeployment'));
    };
    if (signal.aborted) return onAbort();
    subscribe(COORDINATOR_EVENTS.deployed, listener);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`, or the coded error of `signal` (see core's abortError) when it aborts first. */
async function raceAbort<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) throw abortError(signal, what);
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function adapterFiles(path: string): Promise<AdapterFile[]> {
  const files: AdapterFile[] = [];
  for (const name of (await readdir(path)).sort())
    files.push({ name, base64: (await readFile(join(path, name))).toString('base64') });
  return files;
}
