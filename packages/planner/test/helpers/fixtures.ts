/** Small hand-made clusters whose costs can be worked out on paper. */
import {
  type ClusterProfile,
  COORDINATOR_NODE,
  type DeviceProfile,
  type DeviceTiming,
  type LinkProfile,
  type ModelSummary,
} from '@swarmbee/core';

/** A model with uniform layers; bytes are small round numbers. */
export function flatModel(overrides: Partial<ModelSummary> = {}): ModelSummary {
  const nLayers = overrides.nLayers ?? 4;
  return {
    name: 'flat',
    modelHash: 'flat-hash',
    nLayers,
    dim: 8,
    vocabSize: 32,
    maxSeqLen: 64,
    weightBytesPerParam: 4,
    layers: Array.from({ length: nLayers }, () => ({ paramBytes: 1000, kvBytesPerToken: 10 })),
    embeddingBytes: 200,
    headBytes: 300,
    tiedEmbedding: false,
    ...overrides,
  };
}

/** Times that do not depend on batch or context: one sample each (batch axes grow in proportion, see grid.ts). */
export function flatTiming(layerMs: number, embeddingMs = 0.1, headMs = 0.5): DeviceTiming {
  const one = (ms: number) => ({ batchSizes: [1], contextTokens: [0], ms: [[ms]] });
  const chunk = (ms: number) => ({ chunkTokens: [1], contextTokens: [0], ms: [[ms]] });
  return {
    layers: [{ decode: one(layerMs), prefill: chunk(layerMs) }],
    embedding: { decode: one(embeddingMs), prefill: chunk(embeddingMs) },
    head: { decode: one(headMs) },
  };
}

export function device(name: string, memoryBytes: number, layerMs = 1): DeviceProfile {
  return { name, memoryBytes, timing: flatTiming(layerMs), estimate: false };
}

/** Every pair of nodes (the coordinator included) linked alike. */
export function meshLinks(
  names: readonly string[],
  rttMs = 2,
  bandwidthBytesPerS = 1e6,
): LinkProfile[] {
  const nodes = [COORDINATOR_NODE, ...names];
  const links: LinkProfile[] = [];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++)
      links.push({ from: nodes[i]!, to: nodes[j]!, rttMs, bandwidthBytesPerS });
  }
  return links;
}

export function cluster(
  model: ModelSummary,
  devices: DeviceProfile[],
  links?: LinkProfile[],
): ClusterProfile {
  return {
    model,
    devices,
    links: links ?? meshLinks(devices.map((d) => d.name)),
    createdAt: '2025-01-01T00:00:00.000Z',
    versions: { swarmbee: 'test' },
  };
}
