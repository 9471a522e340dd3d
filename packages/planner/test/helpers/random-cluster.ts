/**
 * Seeded random planning instances small enough for brute force: up to 8 layers and 4
 * devices, with random memory (some instances do not fit), timing grids, links, pins,
 * objectives and micro-batch candidates. Clones of devices with uniform links exercise
 * the DP's grouping of identical devices; uniform layers exercise its tie-breaking.
 */
import {
  type ClusterProfile,
  COORDINATOR_NODE,
  type DecodeTimingGrid,
  type DeviceProfile,
  type DeviceTiming,
  type LinkProfile,
  type ModelSummary,
  type PrefillTimingGrid,
} from '@swarmbee/core';
import type { Objective, Workload } from '../../src/index.js';
import { Rng } from '../../src/rng.js';

export interface Instance {
  seed: number;
  cluster: ClusterProfile;
  workload: Workload;
  objective: Objective;
  pinFirst?: string;
  pinLast?: string;
  microBatchCandidates: number[];
  microBatchesInFlight?: number;
}

export interface InstanceLimits {
  maxLayers: number;
  maxDevices: number;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

function axis(rng: Rng, choices: readonly number[][]): number[] {
  return [...pick(rng, choices)];
}

function decodeGrid(rng: Rng, scale: number): DecodeTimingGrid {
  const batchSizes = axis(rng, [[1], [1, 4], [2, 8], [1, 2, 3]]);
  const contextTokens = axis(rng, [[0], [0, 32], [8, 64]]);
  const ms = batchSizes.map(() => contextTokens.map(() => rng.next() * scale));
  return { batchSizes, contextTokens, ms };
}

function prefillGrid(rng: Rng, scale: number): PrefillTimingGrid {
  const chunkTokens = axis(rng, [[1], [1, 16], [4, 32]]);
  const contextTokens = axis(rng, [[0], [0, 32]]);
  const ms = chunkTokens.map(() => contextTokens.map(() => rng.next() * scale * 4));
  return { chunkTokens, contextTokens, ms };
}

function timing(rng: Rng, nLayers: number): DeviceTiming {
  const scale = 0.05 + rng.next() * 5;
  const layerCount = rng.next() < 0.5 ? 1 : nLayers;
  return {
    layers: Array.from({ length: layerCount }, () => ({
      decode: decodeGrid(rng, scale),
      prefill: prefillGrid(rng, scale),
    })),
    embedding: { decode: decodeGrid(rng, scale / 4), prefill: prefillGrid(rng, scale / 4) },
    head: { decode: decodeGrid(rng, scale) },
    // Half the devices carry a measured per-stage step cost, as real profiles do.
    ...(rng.next() < 0.5 ? { stageOverhead: { decode: decodeGrid(rng, scale / 2) } } : {}),
  };
}

function model(rng: Rng, nLayers: number, maxSeqLen: number): ModelSummary {
  const uniform = rng.next() < 0.4;
  const param = 100 + rng.int(900);
  const kv = 1 + rng.int(10);
  const tiedEmbedding = rng.next() < 0.5;
  const embeddingBytes = rng.int(1000);
  return {
    name: 'random',
    modelHash: 'hash',
    nLayers,
    dim: pick(rng, [16, 64, 256]),
    vocabSize: 100,
    maxSeqLen,
    weightBytesPerParam: 4,
    layers: Array.from({ length: nLayers }, () =>
      uniform
        ? { paramBytes: param, kvBytesPerToken: kv }
        : { paramBytes: 100 + rng.int(900), kvBytesPerToken: 1 + rng.int(10) },
    ),
    embeddingBytes,
    headBytes: tiedEmbedding ? embeddingBytes + rng.int(50) : rng.int(1500),
    tiedEmbedding,
  };
}

function randomLink(rng: Rng): Omit<LinkProfile, 'from' | 'to'> {
  return {
    rttMs: rng.next() < 0.2 ? 0 : rng.next() * 5,
    bandwidthBytesPerS: 1e5 + rng.next() * 1e8,
  };
}

export function randomInstance(
  seed: number,
  limits: InstanceLimits = { maxLayers: 8, maxDevices: 4 },
): Instance {
  const rng = new Rng(seed);
  const nLayers = 1 + rng.int(limits.maxLayers);
  const contextTokens = 1 + rng.int(64);
  const m = model(rng, nLayers, contextTokens);
  const promptTokens = 1 + rng.int(contextTokens);
  const workload: Workload = {
    contextTokens,
    promptTokens,
    prefillChunkTokens: 1 + rng.int(32),
    decodeContextTokens: rng.int(contextTokens + 1),
    risk: 'p50',
  };
  const whole =
    m.layers.reduce((s, l) => s + l.paramBytes + l.kvBytesPerToken * contextTokens, 0) +
    m.embeddingBytes +
    m.headBytes;
  const nDevices = 1 + rng.int(limits.maxDevices);
  const devices: DeviceProfile[] = [];
  for (let i = 0; i < nDevices; i++) {
    const previous = devices[i - 1];
    if (previous && rng.next() < 0.4) {
      devices.push({ ...previous, name: `d${i}` });
      continue;
    }
    devices.push({
      name: `d${i}`,
      memoryBytes: Math.round(whole * (0.15 + rng.next() * 1.2)),
      timing: timing(rng, nLayers),
      estimate: false,
    });
  }
  const names = [COORDINATOR_NODE, ...devices.map((d) => d.name)];
  const uniform = rng.next() < 0.4 ? randomLink(rng) : undefined;
  const links: LinkProfile[] = [];
  for (const from of names) {
    for (const to of names) {
      if (from === to) continue;
      // Some links are given one way only (taken as symmetric), some both ways and asymmetric.
      if (uniform) {
        if (from < to) links.push({ from, to, ...uniform });
      } else if (from < to || rng.next() < 0.5) {
        links.push({ from, to, ...randomLink(rng) });
      }
    }
  }
  const instance: Instance = {
    seed,
    cluster: {
      model: m,
      devices,
      links,
      createdAt: '2025-01-01T00:00:00.000Z',
      versions: { swarmbee: 'test' },
    },
    workload,
    objective: rng.next() < 0.5 ? 'latency' : 'throughput',
    microBatchCandidates: [1, 2, 3, 4].filter(() => rng.next() < 0.6),
  };
  if (instance.microBatchCandidates.length === 0)
    instance.microBatchCandidates.push(1 + rng.int(4));
  if (rng.next() < 0.25) instance.pinFirst = pick(rng, devices).name;
  if (rng.next() < 0.25) instance.pinLast = pick(rng, devices).name;
  if (rng.next() < 0.2) instance.microBatchesInFlight = 1 + rng.int(3);
  // Some coordinators have measured their own step work (it can be the bottleneck).
  if (rng.next() < 0.4) {
    const base = rng.next() * 3;
    instance.cluster.coordinator = {
      batchSizes: [1, 2, 4],
      stepMs: [base, base + rng.next(), base + 2 * rng.next() + 1],
    };
  }
  return instance;
}
