/** A cluster profile made up for planning tests: devices of a given layer time, uniform links. */
import { type ClusterProfile, COORDINATOR_NODE, type DeviceProfile } from '@swarmbee/core';

export const SYNTHETIC_LAYERS = 8;

function device(name: string, layerMs: number): DeviceProfile {
  const batchSizes = [1, 2, 4, 8, 16, 32];
  const grid = (ms: number) => ({
    batchSizes,
    contextTokens: [16, 256],
    ms: batchSizes.map((b) => [ms * (1 + b / 16), ms * (1 + b / 16)]),
  });
  return {
    name,
    memoryBytes: 1e10,
    estimate: false,
    timing: {
      layers: [
        {
          decode: grid(layerMs),
          prefill: {
            chunkTokens: [16, 128],
            contextTokens: [0],
            ms: [[layerMs * 2], [layerMs * 8]],
          },
        },
      ],
      embedding: {
        decode: grid(0.01),
        prefill: { chunkTokens: [16], contextTokens: [0], ms: [[0.01]] },
      },
      head: { decode: grid(0.5) },
    },
  };
}

export interface SyntheticProfileOptions {
  /** Each device's time per layer at batch 1, ms, by name. Default: devices a and b, 1 ms. */
  devices?: Record<string, number>;
  /** Every device's time per layer when `devices` is not given, ms. Default 1. */
  layerMs?: number;
  /** Every link's bandwidth, bytes/s. Default 1e8. */
  bandwidthBytesPerS?: number;
  /** Each layer's weights, bytes. Default 1e6. */
  layerBytes?: number;
}

export function syntheticProfile(options: SyntheticProfileOptions = {}): ClusterProfile {
  const layerMs = options.layerMs ?? 1;
  const devices = options.devices ?? { a: layerMs, b: layerMs };
  const names = Object.keys(devices);
  const nodes = [COORDINATOR_NODE, ...names];
  const bandwidthBytesPerS = options.bandwidthBytesPerS ?? 1e8;
  const links = nodes.flatMap((from, i) =>
    nodes.slice(i + 1).map((to) => ({ from, to, rttMs: 1, bandwidthBytesPerS })),
  );
  return {
    model: {
      name: 'm',
      modelHash: 'h',
      nLayers: SYNTHETIC_LAYERS,
      dim: 64,
      vocabSize: 100,
      maxSeqLen: 512,
      weightBytesPerParam: 4,
      layers: Array.from({ length: SYNTHETIC_LAYERS }, () => ({
        paramBytes: options.layerBytes ?? 1e6,
        kvBytesPerToken: 512,
      })),
      embeddingBytes: 1e5,
      headBytes: 1e5,
      tiedEmbedding: false,
    },
    devices: names.map((name) => device(name, devices[name]!)),
    links,
    createdAt: '2026-12-03T00:00:00.000Z',
    versions: { swarmbee: 'test' },
  };
}
