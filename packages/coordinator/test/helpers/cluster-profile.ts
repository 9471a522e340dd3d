/**
 * Cluster profiles made up for the coordinator's planning tests, from the planner's paper
 * fixtures: uniform layers, uniform links, one layer time per device.
 */
import type { ClusterProfile, DeviceProfile, ModelSummary } from '@swarmbee/core';
import { cluster, flatModel, meshLinks } from '../../../planner/test/helpers/fixtures.js';

export const SYNTHETIC_LAYERS = 8;

/** A decode grid that grows with the batch, so that throughput plans differ from latency plans. */
function timing(layerMs: number): DeviceProfile['timing'] {
  const batchSizes = [1, 2, 4, 8, 16, 32];
  const grid = (ms: number) => ({
    batchSizes,
    contextTokens: [16, 256],
    ms: batchSizes.map((b) => [ms * (1 + b / 16), ms * (1 + b / 16)]),
  });
  return {
    layers: [
      {
        decode: grid(layerMs),
        prefill: { chunkTokens: [16, 128], contextTokens: [0], ms: [[layerMs * 2], [layerMs * 8]] },
      },
    ],
    embedding: {
      decode: grid(0.01),
      prefill: { chunkTokens: [16], contextTokens: [0], ms: [[0.01]] },
    },
    head: { decode: grid(0.5) },
  };
}

export interface SyntheticProfileOptions {
  /** Each device's time per layer at batch 1, ms, by name. Default: devices a and b at `layerMs`. */
  devices?: Record<string, number>;
  /** Every device's time per layer when `devices` is not given, ms. Default 1. */
  layerMs?: number;
  /** Every device's memory, bytes. Default 1e10. */
  memoryBytes?: number;
  /** Every link's bandwidth, bytes/s. Default 1e8. */
  bandwidthBytesPerS?: number;
  /** The model. Default: SYNTHETIC_LAYERS layers of 1 MB weights and 512 B of KV per token. */
  model?: ModelSummary;
}

export function syntheticProfile(options: SyntheticProfileOptions = {}): ClusterProfile {
  const layerMs = options.layerMs ?? 1;
  const devices = options.devices ?? { a: layerMs, b: layerMs };
  const names = Object.keys(devices);
  const model =
    options.model ??
    flatModel({
      nLayers: SYNTHETIC_LAYERS,
      dim: 64,
      vocabSize: 100,
      maxSeqLen: 512,
      layers: Array.from({ length: SYNTHETIC_LAYERS }, () => ({
        paramBytes: 1e6,
        kvBytesPerToken: 512,
      })),
      embeddingBytes: 1e5,
      headBytes: 1e5,
    });
  return cluster(
    model,
    names.map((name) => ({
      name,
      memoryBytes: options.memoryBytes ?? 1e10,
      estimate: false,
      timing: timing(devices[name]!),
    })),
    meshLinks(names, 1, options.bandwidthBytesPerS ?? 1e8),
  );
}
