/** Resolves `--model`: a model dir, or the embedded default when absent. */
import { cachedSynthModel, DEFAULT_PRESET, type ModelDir, openModelDir } from '@swarmbee/model';
import { withProgress } from './ui/progress.js';

export const DEFAULT_MODEL_NOTICE =
  `using the embedded default model (synthetic "${DEFAULT_PRESET}" preset: random weights, so the text is noise). ` +
  'For a model that writes real text: swarmbee model pull stories15M --out models/stories15m, then --model models/stories15m';

export async function resolveModel(
  path: string | undefined,
  notice: (line: string) => void,
): Promise<ModelDir> {
  if (path) return openModelDir(path);
  notice(DEFAULT_MODEL_NOTICE);
  return withProgress((progress) => cachedSynthModel(DEFAULT_PRESET, undefined, { progress }));
}
