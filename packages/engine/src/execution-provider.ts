/**
 * onnxruntime execution providers: which ones this build of onnxruntime-node
 * carries, and a clear error naming them when another is asked for.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ExecutionProviderUnavailableError } from '@swarmbee/core';
import { listSupportedBackends } from 'onnxruntime-node';

export const DEFAULT_EXECUTION_PROVIDER = 'cpu';

/**
 * Providers this onnxruntime-node install can run (`cpu` always). A backend it
 * does not bundle (CUDA, TensorRT) counts only when its provider library is on
 * disk: the package's install script fetches it, and this repository does not run
 * that script (package.json `allowScripts`).
 */
export function availableExecutionProviders(): string[] {
  return listSupportedBackends()
    .filter((backend) => backend.bundled || providerLibraryInstalled(backend.name))
    .map((backend) => backend.name);
}

function providerLibraryInstalled(name: string): boolean {
  const packageDir = dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')));
  const binDir = join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
  const file =
    process.platform === 'win32'
      ? `onnxruntime_providers_${name}.dll`
      : `libonnxruntime_providers_${name}.so`;
  return existsSync(join(binDir, file));
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
