/** What a worker tells the coordinator about its machine when it registers. */
import { arch, availableParallelism, freemem, platform, totalmem } from 'node:os';
import type { DeviceFacts } from '@swarmbee/protocol';
import ort from 'onnxruntime-node';

export function deviceFacts(): DeviceFacts {
  return {
    arch: arch(),
    platform: platform(),
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    ortVersion: ort.env.versions.node ?? 'unknown',
    nodeVersion: process.version,
  };
}
