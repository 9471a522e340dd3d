/**
 * Profiles the cluster for the planner: each worker times small shards of the
 * model (sent like any shard, and cached on the worker per model and runtime), and
 * every link — worker to worker, worker to coordinator, coordinator to worker — is
 * measured with probes over the data plane it will carry. A worker that refuses the
 * profile's shards for memory (MEMORY_SHORT) is left out of the profile, and said so
 * through `refused`, so that the plan is made on the others.
 */
import {
  asSwarmBeeError,
  type ClusterProfile,
  COORDINATOR_NODE,
  type DeviceProfile,
  type DeviceTiming,
  type LinkProfile,
  MemoryShortError,
  type MemoryShortfall,
  modelSummaryFromManifest,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import {
  type ModelDir,
  type ProgressFn,
  requireLlamaDir,
  servedAdapterLayerBytes,
} from '@swarmbee/model';
import {
  type ClientTlsOptions,
  connectShaped,
  type LinkShape,
  measureLink,
} from '@swarmbee/protocol';
import type { DeployOptions } from './deployer.js';
import type { ShardStore } from './shard-store.js';
import { sendShard } from './shard-transfer.js';
import type { WorkerLink } from './worker-link.js';

export interface ProfileClusterOptions {
  model: ModelDir;
  workers: readonly WorkerLink[];
  store: ShardStore;
  /** The coordinator's data URL, for the worker → coordinator links. */
  coordinatorUrl: string;
  token: string;
  /** Measure again even where a worker has a cached compute profile. */
  reprofile?: boolean;
  /** Shape of the coordinator's own outgoing links (benchmarks). */
  linkShape?: LinkShape;
  /** How to check workers' wss:// certificates. */
  clientTls?: ClientTlsOptions;
  /** Longest wait for one worker's measurement, ms. Default 300000. */
  timeoutMs?: number;
  deploy?: DeployOptions;
  progress?: ProgressFn;
  log?: (line: string) => void;
  /**
   * A worker refused the profile's shards for memory, with what it can hold: it is left out
   * of the profile. Without it, the refusal fails the whole profile.
   */
  refused?: (shortfall: MemoryShortfall) => void;
}

export const DEFAULT_PROFILE_TIMEOUT_MS = 300_000;
/** Middle layers in the profile's span shard: more divides a layer's noise by more, and costs time. */
export const PROFILE_SPAN_LAYERS = 4;

let nextRequest = 1;

export async function profileCluster(options: ProfileClusterOptions): Promise<ClusterProfile> {
  const { model, workers, store } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROFILE_TIMEOUT_MS;
  const nLayers = model.manifest.config.nLayers;
  let total = workers.length + workers.length * (workers.length + 1);
  let done = 0;
  const step = (phase: string) =>
    options.progress?.({ phase, done: ++done, total, unit: 'tensors' });

  // Small shards: embedding + first layer, a middle layer, last layer + head, and a span of
  // middle layers that tells a layer's time from the engine's fixed cost per pass.
  const first = await store.ensure({ start: 0, end: 1 });
  const last = await store.ensure({ start: nLayers - 1, end: nLayers });
  const middle = nLayers >= 3 ? await store.ensure({ start: 1, end: 2 }) : undefined;
  const spanLayers = Math.min(PROFILE_SPAN_LAYERS, nLayers - 2);
  const span = spanLayers >= 2 ? await store.ensure({ start: 1, end: 1 + spanLayers }) : undefined;
  const shards = [first, last, ...(middle ? [middle] : []), ...(span ? [span] : [])];

  const devices: DeviceProfile[] = [];
  const profiled: WorkerLink[] = [];
  let refusal: MemoryShortError | undefined;
  for (const worker of workers) {
    let result: { timing: DeviceTiming; memoryBytes: number; cached: boolean; source: string };
    try {
      for (const shard of shards) await sendShard(worker, shard, options.deploy ?? {});
      const params: Record<string, string | boolean> = {
        modelHash: model.manifest.modelHash,
        first: first.manifest.shardId,
        last: last.manifest.shardId,
        reprofile: options.reprofile === true,
      };
      if (middle) params.middle = middle.manifest.shardId;
      if (span) params.span = span.manifest.shardId;
      const reply = await worker.channel.request(
        { type: 'profile.request', requestId: `profile-${nextRequest++}`, kind: 'compute', params },
        { timeoutMs },
      );
      result = reply.result as typeof result;
    } catch (error) {
      const coded = asSwarmBeeError(error);
      if (!(coded instanceof MemoryShortError && coded.memory && options.refused)) throw error;
      options.log?.(`${worker.name} refused the profile's shards for memory; planning without it`);
      options.refused(coded.memory);
      refusal = coded;
      step(`profile ${worker.name} (refused)`);
      continue;
    }
    options.log?.(`profiled ${worker.name}${result.cached ? ' (cached)' : ''}`);
    devices.push({
      name: worker.name,
      memoryBytes: result.memoryBytes,
      timing: result.timing,
      estimate: false,
      source: result.source,
      runtime: { node: worker.device.nodeVersion, onnxruntime: worker.device.ortVersion },
    });
    profiled.push(worker);
    step(`profile ${worker.name}`);
  }
  // No worker can hold even the profile's shards: no plan can be made.
  if (refusal && profiled.length === 0) throw refusal;
  total = workers.length + profiled.length * (profiled.length + 1);

  const links: LinkProfile[] = [];
  const link = (from: string, to: string, m: { rttMs: number; bandwidthBytesPerS: number }) =>
    links.push({ from, to, rttMs: m.rttMs, bandwidthBytesPerS: m.bandwidthBytesPerS });
  const workerMeasures = async (worker: WorkerLink, url: string) => {
    const reply = await worker.channel.request(
      {
        type: 'profile.request',
        requestId: `profile-${nextRequest++}`,
        kind: 'link',
        params: { url },
      },
      { timeoutMs },
    );
    return reply.result as { rttMs: number; bandwidthBytesPerS: number };
  };
  for (const from of profiled) {
    for (const to of profiled) {
      if (from === to) continue;
      link(from.name, to.name, await workerMeasures(from, to.dataUrl));
      step(`link ${from.name} -> ${to.name}`);
    }
    link(from.name, COORDINATOR_NODE, await workerMeasures(from, options.coordinatorUrl));
    step(`link ${from.name} -> coordinator`);
    const channel = await connectShaped(
      from.dataUrl,
      {
        token: options.token,
        role: 'coordinator',
        name: 'coordinator/probe',
        tls: options.clientTls,
      },
      options.linkShape,
    );
    try {
      link(COORDINATOR_NODE, from.name, await measureLink(channel));
    } finally {
      channel.close(1000, 'probe done');
    }
    step(`link coordinator -> ${from.name}`);
  }
  return {
    model: servedSummary(model, store),
    devices,
    links,
    createdAt: new Date().toISOString(),
    versions: {
      swarmbee: SWARMBEE_VERSION,
      node: process.version,
    },
  };
}

/**
 * The model as its shards serve it: each layer's weights, plus the stacks of the adapters the
 * shards serve beside them (`coordinator --adapter`), so that plans count their memory.
 */
function servedSummary(model: ModelDir, store: ShardStore): ClusterProfile['model'] {
  const summary = modelSummaryFromManifest(model.manifest);
  if (store.adapters.length === 0) return summary;
  const stacks = servedAdapterLayerBytes(
    store.adapters,
    requireLlamaDir(model, '--adapter').manifest,
  );
  return {
    ...summary,
    layers: summary.layers.map((layer, i) => ({
      ...layer,
      paramBytes: layer.paramBytes + stacks[i]!,
    })),
  };
}

/** `base` with the devices and links `fresh` measured again replaced by their new figures. */
export function withRemeasured(base: ClusterProfile, fresh: ClusterProfile): ClusterProfile {
  const measured = (l: LinkProfile) => fresh.links.some((f) => f.from === l.from && f.to === l.to);
  return {
    ...base,
    devices: base.devices.map((d) => fresh.devices.find((f) => f.name === d.name) ?? d),
    links: [...base.links.filter((l) => !measured(l)), ...fresh.links],
  };
}
