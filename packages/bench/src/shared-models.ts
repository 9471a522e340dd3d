/** The read-only test models beside the repository, which some suites measure on. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importLlama2c, type ModelDir } from '@swarmbee/model';

// Through the package's name, not beside this module: the CLI runs it bundled elsewhere.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.resolve('@swarmbee/bench')));
/** `$SWARMBEE_SHARED_MODELS`, else `../shared/models` beside the repository. */
export const SHARED_MODELS =
  process.env.SWARMBEE_SHARED_MODELS ?? resolve(REPO_ROOT, '..', 'shared', 'models');

export const STORIES260K_CHECKPOINT = join(SHARED_MODELS, 'stories260K', 'stories260K.bin');

/** stories260K imported into `out`; undefined when the shared models are not there. */
export async function importStories260k(out: string): Promise<ModelDir | undefined> {
  if (!existsSync(STORIES260K_CHECKPOINT)) return undefined;
  return importLlama2c({
    checkpoint: STORIES260K_CHECKPOINT,
    tokenizer: join(SHARED_MODELS, 'stories260K', 'tok512.bin'),
    out,
  });
}
