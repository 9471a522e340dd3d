/** What a worker tells the coordinator about its machine when it registers. */
import { arch, availableParallelism, freemem, platform, totalmem } from 'node:os';
import { DEFAULT_EXECUTION_PROVIDER } from '@swarmbee/engine';
import type { DeviceFacts } from '@swarmbee/protocol';
import ort from 'onnxruntime-node';

/** `executionProvider`: the provider the worker's stages run on (its `--execution-provider`). */
export function deviceFacts(executionProvider = DEFAULT_EXECUTION_PROVIDER): DeviceFacts {
  return {
    arch: arch(),
    platform: platform(),
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    ortVersion: ort.env.versions.node ?? 'unknown',
    executionProvider,
    nodeVersion: process.version,
  };
}
