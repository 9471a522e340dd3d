/**
 * onnxruntime execution providers: which ones this build of onnxruntime-node
 * carries, and a clear error naming them when another is asked for.
 */
import { ExecutionProviderUnavailableError } from '@swarmbee/core';
import { listSupportedBackends } from 'onnxruntime-node';

export const DEFAULT_EXECUTION_PROVIDER = 'cpu';

/** Providers this onnxruntime-node build supports (`cpu` always). */
export function availableExecutionProviders(): string[] {
  return listSupportedBackends().map((backend) => backend.name);
}

/** The providers to give a session, most preferred first, with CPU as the fallback. */
export function executionProviders(requested: string = DEFAULT_EXECUTION_PROVIDER): string[] {
  const available = availableExecutionProviders();
  if (!available.includes(requested)) {
    const hint =
      requested === 'cuda' || requested === 'tensorrt'
        ? ' onnxruntime-node publishes its CUDA build for linux x64 only; a Jetson GPU needs an onnxruntime built for JetPack.'
        : '';
    throw new ExecutionProviderUnavailableError(
      `execution provider "${requested}" is not available in this onnxruntime-node (${process.platform}/${process.arch}); available: ${available.join(', ')}.${hint}`,
    );
  }
  return requested === 'cpu' ? ['cpu'] : [requested, 'cpu'];
}
