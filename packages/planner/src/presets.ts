/**
 * Estimated profiles of the devices SwarmBee targets, from published figures. They
 * let a user plan before any worker is measured; every one is marked `estimate: true`
 * and names its source, and a measured profile always replaces it.
 */
import {
  type ClusterProfile,
  COORDINATOR_NODE,
  type DeviceProfile,
  InvalidArgumentError,
  type LinkProfile,
  type ModelSummary,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import { analyticTiming, type DeviceSpec, type TimingSamples } from './analytic.js';

export interface DevicePreset extends DeviceSpec {
  /** Stable identifier used on the command line: `rpi4-4gb`. */
  id: string;
  description: string;
  /** One line: where the figures come from. */
  source: string;
}

const GiB = 1024 ** 3;

export const DEVICE_PRESETS: readonly DevicePreset[] = [
  {
    id: 'rpi4-4gb',
    description: 'Raspberry Pi 4 Model B, 4 GB',
    memoryBytes: 3 * GiB,
    memoryBandwidthBytesPerS: 5.0e9,
    computeFlopsPerS: 12e9,
    opOverheadMs: 0.15,
    source:
      'BCM2711 4x Cortex-A72 1.5 GHz, LPDDR4-3200 x32 (12.8 GB/s peak, ~5.5 GB/s STREAM), ~8 GFLOPS HPL fp64; 1 GB left to the OS',
  },
  {
    id: 'rpi4-8gb',
    description: 'Raspberry Pi 4 Model B, 8 GB',
    memoryBytes: 7 * GiB,
    memoryBandwidthBytesPerS: 5.0e9,
    computeFlopsPerS: 12e9,
    opOverheadMs: 0.15,
    source:
      'BCM2711 4x Cortex-A72 1.5 GHz, LPDDR4-3200 x32 (12.8 GB/s peak, ~5.5 GB/s STREAM), ~8 GFLOPS HPL fp64; 1 GB left to the OS',
  },
  {
    id: 'rpi5-8gb',
    description: 'Raspberry Pi 5, 8 GB',
    memoryBytes: 7 * GiB,
    memoryBandwidthBytesPerS: 10e9,
    computeFlopsPerS: 30e9,
    opOverheadMs: 0.08,
    source:
      'BCM2712 4x Cortex-A76 2.4 GHz, LPDDR4X-4267 x32 (17 GB/s peak, ~10 GB/s STREAM), ~30 GFLOPS HPL; 1 GB left to the OS',
  },
  {
    id: 'orin-nano-8gb-cpu',
    description: 'Jetson Orin Nano 8 GB, CPU',
    memoryBytes: 6 * GiB,
    memoryBandwidthBytesPerS: 35e9,
    computeFlopsPerS: 50e9,
    opOverheadMs: 0.08,
    source:
      '6x Cortex-A78AE 1.5 GHz, LPDDR5 x128 68 GB/s peak shared with the GPU, ~144 GFLOPS fp32 peak NEON; 2 GB left to JetPack',
  },
  {
    id: 'orin-nano-8gb-gpu',
    description: 'Jetson Orin Nano 8 GB, GPU (CUDA)',
    memoryBytes: 6 * GiB,
    memoryBandwidthBytesPerS: 55e9,
    computeFlopsPerS: 0.9e12,
    opOverheadMs: 0.25,
    source:
      '1024-core Ampere GPU 625 MHz (1.28 TFLOPS fp32 peak), LPDDR5 x128 68 GB/s peak; kernel launches cost ~0.25 ms per layer; 2 GB left to JetPack',
  },
  {
    id: 'laptop-16gb',
    description: 'x86-64 laptop, 8 cores with AVX2, 16 GB',
    memoryBytes: 12 * GiB,
    memoryBandwidthBytesPerS: 35e9,
    computeFlopsPerS: 250e9,
    opOverheadMs: 0.03,
    source:
      'dual-channel DDR4-3200 (51.2 GB/s peak, ~35 GB/s STREAM), 8 cores AVX2 FMA at ~3 GHz (~250 GFLOPS sustained GEMM); 4 GB left to the desktop',
  },
];

/** The preset with this id; an unknown id throws an error listing the known ones. */
export function findPreset(id: string): DevicePreset {
  const preset = DEVICE_PRESETS.find((p) => p.id === id);
  if (!preset) {
    const known = DEVICE_PRESETS.map((p) => p.id).join(', ');
    throw new InvalidArgumentError(`unknown device preset "${id}"; known presets: ${known}`);
  }
  return preset;
}

/** The estimated profile of a device of this preset running this model. */
export function deviceProfileFromPreset(
  preset: DevicePreset | string,
  model: ModelSummary,
  name: string,
  samples?: TimingSamples,
): DeviceProfile {
  const spec = typeof preset === 'string' ? findPreset(preset) : preset;
  return {
    name,
    memoryBytes: spec.memoryBytes,
    timing: analyticTiming(spec, model, samples),
    estimate: true,
    source: `preset ${spec.id}: ${spec.source}`,
  };
}

/** A network path's figures, without its endpoints. */
export interface LinkSpec {
  /** Round-trip time in milliseconds. */
  rttMs: number;
  /** Sustained bandwidth in bytes per second. */
  bandwidthBytesPerS: number;
}

/** A switched LAN: gigabit Ethernet with ~0.3 ms round trips, ~110 MB/s of payload. */
export const GIGABIT_LAN: Readonly<LinkSpec> = { rttMs: 0.3, bandwidthBytesPerS: 110e6 };

/** The same link between every pair of devices and between each device and the coordinator. */
export function uniformLinks(deviceNames: readonly string[], link: LinkSpec): LinkProfile[] {
  const links: LinkProfile[] = [];
  const nodes = [COORDINATOR_NODE, ...deviceNames];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      links.push({ from: nodes[i]!, to: nodes[j]!, ...link });
    }
  }
  return links;
}

/** A cluster of preset devices on one uniform network: planning before measuring. */
export function clusterFromPresets(
  model: ModelSummary,
  devices: readonly { name: string; preset: DevicePreset | string }[],
  link: LinkSpec = GIGABIT_LAN,
  createdAt: string = new Date().toISOString(),
): ClusterProfile {
  return {
    model,
    devices: devices.map((d) => deviceProfileFromPreset(d.preset, model, d.name)),
    links: uniformLinks(
      devices.map((d) => d.name),
      link,
    ),
    createdAt,
    versions: { swarmbee: SWARMBEE_VERSION },
  };
}
