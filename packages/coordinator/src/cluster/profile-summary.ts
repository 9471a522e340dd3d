/**
 * What the cluster description says about the last measurement: each device's speed in
 * one figure and every measured link, without the full timing grids.
 */
import type { ClusterProfile, LinkProfile } from '@swarmbee/core';

export interface MeasuredDevice {
  name: string;
  /** Bytes available for weights plus KV cache. */
  memoryBytes: number;
  /** Mean decode step of one layer at batch 1 and the smallest measured context, ms. */
  layerDecodeMs: number | null;
  /** True when the figures are a preset's estimate, not a measurement. */
  estimate: boolean;
}

export interface MeasuredCluster {
  /** ISO 8601 time of the measurement. */
  createdAt: string;
  devices: MeasuredDevice[];
  links: LinkProfile[];
}

export function profileSummary(profile: ClusterProfile): MeasuredCluster {
  return {
    createdAt: profile.createdAt,
    devices: profile.devices.map((device) => {
      const firsts = device.timing.layers
        .map((layer) => layer.decode.ms[0]?.[0])
        .filter((ms): ms is number => ms !== undefined);
      return {
        name: device.name,
        memoryBytes: device.memoryBytes,
        layerDecodeMs:
          firsts.length > 0 ? firsts.reduce((sum, ms) => sum + ms, 0) / firsts.length : null,
        estimate: device.estimate,
      };
    }),
    links: profile.links.map(({ from, to, rttMs, bandwidthBytesPerS }) => ({
      from,
      to,
      rttMs,
      bandwidthBytesPerS,
    })),
  };
}
