/**
 * Checks a cluster profile before anything trusts it, resolves the workload, and lays
 * the links out as a dense table (the coordinator is the node after the last device).
 */
import {
  type ClusterProfile,
  COORDINATOR_NODE,
  ContextOverflowError,
  type CoordinatorTiming,
  DEFAULT_PREFILL_CHUNK_TOKENS,
  DeviceUnknownError,
  InvalidArgumentError,
  KV_DTYPE_BYTES,
  ProfileInvalidError,
} from '@swarmbee/core';
import type { Workload } from './types.js';
import { msToNs } from './units.js';

/** Prompt length TTFT is predicted for when the request does not say. */
export const DEFAULT_PROMPT_TOKENS = 128;

function checkAxis(axis: readonly number[], what: string): void {
  if (axis.length === 0) throw new ProfileInvalidError(`${what} has no sample points`);
  for (let i = 0; i < axis.length; i++) {
    const x = axis[i]!;
    if (!Number.isFinite(x) || x < 0) throw new ProfileInvalidError(`${what}[${i}] is ${x}`);
    if (i > 0 && x <= axis[i - 1]!) {
      throw new ProfileInvalidError(`${what} must ascend strictly, got ${axis.join(', ')}`);
    }
  }
}

function checkGrid(
  rows: readonly number[],
  cols: readonly number[],
  ms: readonly (readonly number[])[],
  what: string,
): void {
  checkAxis(rows, `${what} rows`);
  checkAxis(cols, `${what} contextTokens`);
  if (ms.length !== rows.length || ms.some((row) => row.length !== cols.length)) {
    throw new ProfileInvalidError(`${what} ms must be ${rows.length} × ${cols.length}`);
  }
  for (const row of ms) {
    for (const value of row) {
      if (!Number.isFinite(value) || value < 0) {
        throw new ProfileInvalidError(`${what} holds a time of ${value} ms`);
      }
    }
  }
}

/** Throws a coded error naming the first thing wrong with the profile. */
function checkCoordinatorTiming(timing: CoordinatorTiming): void {
  const { batchSizes, stepMs } = timing;
  if (batchSizes.length !== stepMs.length)
    throw new ProfileInvalidError(
      `the coordinator's timing has ${batchSizes.length} batch sizes and ${stepMs.length} step times`,
    );
  batchSizes.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 1 || (i > 0 && b <= batchSizes[i - 1]!))
      throw new ProfileInvalidError(
        `the coordinator's batch sizes must be ascending positive integers, got ${batchSizes.join(', ')}`,
      );
  });
  if (stepMs.some((ms) => !Number.isFinite(ms) || ms < 0))
    throw new ProfileInvalidError(
      `the coordinator's step times must be finite and at least 0 ms, got ${stepMs.join(', ')}`,
    );
}

export function validateCluster(cluster: ClusterProfile): void {
  const { model, devices } = cluster;
  if (!Number.isInteger(model.nLayers) || model.nLayers < 1) {
    throw new ProfileInvalidError(`model ${model.name} has ${model.nLayers} layers`);
  }
  if (model.layers.length !== model.nLayers) {
    throw new ProfileInvalidError(
      `model ${model.name} lists ${model.layers.length} layer costs for ${model.nLayers} layers`,
    );
  }
  for (const [what, value] of [
    ['dim', model.dim],
    ['vocabSize', model.vocabSize],
    ['maxSeqLen', model.maxSeqLen],
    ['weightBytesPerParam', model.weightBytesPerParam],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ProfileInvalidError(`model ${model.name} has ${what} ${value}`);
    }
  }
  const bytes = [
    model.embeddingBytes,
    model.headBytes,
    ...model.layers.flatMap((l) => [l.paramBytes, l.kvBytesPerToken]),
  ];
  if (bytes.some((b) => !Number.isFinite(b) || b < 0)) {
    throw new ProfileInvalidError(`model ${model.name} has a negative or non-finite byte count`);
  }
  if (devices.length === 0) throw new ProfileInvalidError('the cluster has no devices');
  if (cluster.coordinator) checkCoordinatorTiming(cluster.coordinator);
  const names = new Set<string>();
  for (const device of devices) {
    const who = `device ${device.name}`;
    if (device.name === COORDINATOR_NODE) {
      throw new ProfileInvalidError(`"${COORDINATOR_NODE}" names the coordinator, not a device`);
    }
    if (names.has(device.name))
      throw new ProfileInvalidError(`two devices are named ${device.name}`);
    names.add(device.name);
    if (!Number.isFinite(device.memoryBytes) || device.memoryBytes < 0) {
      throw new ProfileInvalidError(`${who} has memoryBytes ${device.memoryBytes}`);
    }
    const { timing } = device;
    if (timing.layers.length !== 1 && timing.layers.length !== model.nLayers) {
      throw new ProfileInvalidError(
        `${who} times ${timing.layers.length} layers; give 1 (all alike) or ${model.nLayers}`,
      );
    }
    timing.layers.forEach((op, i) => {
      checkGrid(
        op.decode.batchSizes,
        op.decode.contextTokens,
        op.decode.ms,
        `${who} layer ${i} decode`,
      );
      checkGrid(
        op.prefill.chunkTokens,
        op.prefill.contextTokens,
        op.prefill.ms,
        `${who} layer ${i} prefill`,
      );
    });
    const { embedding, head } = timing;
    checkGrid(
      embedding.decode.batchSizes,
      embedding.decode.contextTokens,
      embedding.decode.ms,
      `${who} embedding decode`,
    );
    checkGrid(
      embedding.prefill.chunkTokens,
      embedding.prefill.contextTokens,
      embedding.prefill.ms,
      `${who} embedding prefill`,
    );
    checkGrid(
      head.decode.batchSizes,
      head.decode.contextTokens,
      head.decode.ms,
      `${who} head decode`,
    );
  }
}

/** Fills in the workload's defaults and checks it against the model. */
export function resolveWorkload(
  cluster: ClusterProfile,
  partial: Partial<Workload> = {},
): Workload {
  const { model } = cluster;
  const contextTokens = partial.contextTokens ?? model.maxSeqLen;
  const promptTokens = partial.promptTokens ?? Math.min(DEFAULT_PROMPT_TOKENS, contextTokens);
  const prefillChunkTokens = partial.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS;
  const decodeContextTokens =
    partial.decodeContextTokens ?? Math.round((promptTokens + contextTokens) / 2);
  for (const [what, value] of [
    ['contextTokens', contextTokens],
    ['promptTokens', promptTokens],
    ['prefillChunkTokens', prefillChunkTokens],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`);
    }
  }
  if (!Number.isSafeInteger(decodeContextTokens) || decodeContextTokens < 0) {
    throw new InvalidArgumentError(
      `decodeContextTokens must be a non-negative integer, got ${decodeContextTokens}`,
    );
  }
  if (contextTokens > model.maxSeqLen) {
    throw new ContextOverflowError(
      `contextTokens ${contextTokens} exceeds ${model.name}'s context of ${model.maxSeqLen} tokens`,
    );
  }
  if (promptTokens > contextTokens) {
    throw new ContextOverflowError(
      `a ${promptTokens}-token prompt does not fit a ${contextTokens}-token context`,
    );
  }
  const { streams } = partial;
  if (streams !== undefined && (!Number.isSafeInteger(streams) || streams < 1))
    throw new InvalidArgumentError(`streams must be a positive integer, got ${streams}`);
  const risk = partial.risk ?? 'p50';
  if (risk !== 'p50' && risk !== 'p90')
    throw new InvalidArgumentError(`risk must be "p50" or "p90", got "${String(risk)}"`);
  const kvDtype = partial.kvDtype ?? 'float32';
  if (!(kvDtype in KV_DTYPE_BYTES))
    throw new InvalidArgumentError(
      `kvDtype must be "float32" or "float16", got "${String(kvDtype)}"`,
    );
  return {
    contextTokens,
    promptTokens,
    prefillChunkTokens,
    decodeContextTokens,
    risk,
    kvDtype,
    ...(streams === undefined ? {} : { streams }),
  };
}

/** Every link the planner may use, by node index; node `devices.length` is the coordinator. */
export interface LinkTable {
  nodes: number;
  /** Half the round trip, in ns. */
  latencyNs: Float64Array;
  bandwidthBytesPerS: Float64Array;
}

export function buildLinkTable(cluster: ClusterProfile): LinkTable {
  const names = cluster.devices.map((d) => d.name);
  const index = new Map<string, number>(names.map((name, i) => [name, i]));
  index.set(COORDINATOR_NODE, names.length);
  const nodes = names.length + 1;
  const latencyNs = new Float64Array(nodes * nodes).fill(Number.NaN);
  const bandwidthBytesPerS = new Float64Array(nodes * nodes).fill(Number.NaN);
  const given = new Set<number>();
  for (const link of cluster.links) {
    const from = index.get(link.from);
    const to = index.get(link.to);
    if (from === undefined || to === undefined) {
      const unknown = from === undefined ? link.from : link.to;
      throw new DeviceUnknownError(`a link names ${unknown}, which is not a device in the profile`);
    }
    if (!(link.rttMs >= 0) || !(link.bandwidthBytesPerS > 0) || !Number.isFinite(link.rttMs)) {
      throw new ProfileInvalidError(
        `link ${link.from} → ${link.to} has rtt ${link.rttMs} ms and ${link.bandwidthBytesPerS} B/s`,
      );
    }
    const at = from * nodes + to;
    latencyNs[at] = msToNs(link.rttMs / 2);
    bandwidthBytesPerS[at] = link.bandwidthBytesPerS;
    given.add(at);
  }
  const nameOf = (i: number) => (i === names.length ? COORDINATOR_NODE : names[i]!);
  for (let a = 0; a < nodes; a++) {
    for (let b = 0; b < nodes; b++) {
      const at = a * nodes + b;
      if (a === b || given.has(at)) continue;
      // A link measured in one direction stands for both.
      const back = b * nodes + a;
      if (!given.has(back)) {
        throw new ProfileInvalidError(`no link between ${nameOf(a)} and ${nameOf(b)}`);
      }
      latencyNs[at] = latencyNs[back]!;
      bandwidthBytesPerS[at] = bandwidthBytesPerS[back]!;
    }
  }
  return { nodes, latencyNs, bandwidthBytesPerS };
}
