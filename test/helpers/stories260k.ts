/**
 * stories260K imported in this process, the model most in-process tests start from. Tests
 * that hand a model dir to `swarmbee` processes use `importStories260k` (cli.ts), and
 * test/cli-model.test.ts checks the import command itself.
 */
import { join } from 'node:path';
import { importLlama2c, type LlamaModelDir } from '@swarmbee/model';
import { haveSharedModel, type Skippable, STORIES260K } from './shared-models.js';

/**
 * stories260K imported into `<root>/stories260k`; `root` is a fresh `t.testdir()` unless
 * given (pass it when the test already made its directory: a second `t.testdir()` empties
 * it). Undefined when the shared model is missing: the test then failed under CI=true, or
 * was skipped (see haveSharedModel).
 */
export async function stories260kDir(
  t: Skippable & { testdir(): string },
  root: string = t.testdir(),
): Promise<LlamaModelDir | undefined> {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return undefined;
  return importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out: join(root, 'stories260k'),
  });
}
