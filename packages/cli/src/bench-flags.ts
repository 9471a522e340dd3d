/**
 * Flags for emulating an edge cluster on one machine — benchmarks and tests only:
 * a slower device (idling after each forward pass) and a shaped link (delay and
 * bandwidth through a user-space proxy). Also the heartbeat timeout.
 */
import type { LinkShape } from '@swarmbee/protocol';

export const linkShapeOptions = {
  'link-delay-ms': {
    type: 'number',
    describe:
      "BENCHMARKS/TESTS ONLY: one-way delay added to this node's outgoing data links, ms (default: none)",
  },
  'link-bandwidth-mbit': {
    type: 'number',
    describe:
      "BENCHMARKS/TESTS ONLY: bandwidth of this node's outgoing data links, Mbit/s (default: unlimited)",
  },
} as const;

export const heartbeatOptions = {
  'heartbeat-timeout-ms': {
    type: 'number',
    describe:
      'Declare a peer dead after this long without a pong or any byte, ms (default 6000; pings every third of it)',
  },
} as const;

export function linkShapeFrom(args: {
  linkDelayMs?: number;
  linkBandwidthMbit?: number;
}): LinkShape | undefined {
  if (args.linkDelayMs === undefined && args.linkBandwidthMbit === undefined) return undefined;
  return {
    delayMs: args.linkDelayMs ?? 0,
    bytesPerSecond:
      args.linkBandwidthMbit === undefined
        ? Number.POSITIVE_INFINITY
        : (args.linkBandwidthMbit * 1e6) / 8,
  };
}

export function channelFrom(args: { heartbeatTimeoutMs?: number }): {
  heartbeatTimeoutMs?: number;
  heartbeatIntervalMs?: number;
} {
  if (args.heartbeatTimeoutMs === undefined) return {};
  return {
    heartbeatTimeoutMs: args.heartbeatTimeoutMs,
    heartbeatIntervalMs: Math.max(50, Math.floor(args.heartbeatTimeoutMs / 3)),
  };
}
