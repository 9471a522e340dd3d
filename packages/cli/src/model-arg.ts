/** Resolves `--model`: a model dir, or the embedded default when absent. */
import { cachedSynthModel, DEFAULT_PRESET, type ModelDir, openModelDir } from '@swarmbee/model';
import { withProgress } from './ui/progress.js';

export const DEFAULT_MODEL_NOTICE =
  `using the embedded default model (synthetic "${DEFAULT_PRESET}" preset: random weights, so the text is noise). ` +
  'For real text, import a trained model: swarmbee model import llama2c stories260K.bin --tokenizer tok512.bin --out models/s260k';

export async function resolveModel(
  path: string | undefined,
  notice: (line: string) => void,
): Promise<ModelDir> {
  if (path) return openModelDir(path);
  notice(DEFAULT_MODEL_NOTICE);
  return withProgress((progress) => cachedSynthModel(DEFAULT_PRESET, undefined, { progress }));
}
