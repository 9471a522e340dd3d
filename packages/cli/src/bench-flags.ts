/**
 * Flags for emulating an edge cluster on one machine — benchmarks and tests only:
 * a slower device (an engine decorator that idles after each forward pass, at a speed
 * that may change mid-run) and a shaped link (delay and bandwidth through a user-space
 * proxy). Also the heartbeat timeout.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { DeviceEmulation } from '@swarmbee/engine';
import type { LinkShape } from '@swarmbee/protocol';

/** How often a speed file is checked for a new speed, ms. */
export const SPEED_FILE_POLL_MS = 100;

export const deviceEmulationOptions = {
  'speed-factor': {
    type: 'number',
    describe:
      'EMULATION, BENCHMARKS/TESTS ONLY: run as a device this fraction as fast, in (0, 1]: each forward pass (a tensor-parallel member: each segment run) is followed by an idle wait (default 1: no emulation)',
  },
  'speed-basis': {
    choices: ['wall', 'cpu'] as const,
    describe:
      "EMULATION, BENCHMARKS/TESTS ONLY: what a forward pass's own time is, which the speed stretches: its wall time, or its process's CPU time when less (emulated devices sharing a core then do not slow each other; for passes of milliseconds) (default wall)",
  },
  'speed-file': {
    type: 'string',
    describe:
      'EMULATION, BENCHMARKS/TESTS ONLY: read the emulated speed from this file (one number in (0, 1]) whenever it changes, e.g. to emulate thermal throttling mid-run (default: none)',
  },
} as const;

/**
 * The device emulation the flags ask for (undefined: none), and the function that stops
 * watching its speed file. A speed file that is missing or does not hold a valid speed is
 * reported and left alone: the speed stays what it was.
 */
export function deviceEmulationFrom(
  args: { speedFactor?: number; speedFile?: string; speedBasis?: 'wall' | 'cpu' },
  log: (line: string) => void,
): { emulation?: DeviceEmulation; stop: () => void } {
  if (args.speedFactor === undefined && args.speedFile === undefined) return { stop: () => {} };
  const emulation = new DeviceEmulation(args.speedFactor ?? 1, args.speedBasis ?? 'wall');
  const path = args.speedFile;
  if (path === undefined) return { emulation, stop: () => {} };
  const read = () => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch {
      return; // not written yet
    }
    const speed = Number(text);
    try {
      if (speed !== emulation.speed) {
        emulation.setSpeed(speed);
        log(`emulated speed now ${speed} (from ${path})`);
      }
    } catch (error) {
      log(`ignoring ${path}: ${(error as Error).message}`);
    }
  };
  read();
  watchFile(path, { interval: SPEED_FILE_POLL_MS }, read);
  return { emulation, stop: () => unwatchFile(path, read) };
}

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
