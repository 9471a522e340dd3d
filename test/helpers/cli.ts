/** Runs the built `swarmbee` CLI as a real process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cachedFixture, contentKey, copyFixture } from './fixture-cache.js';
import { REPO_ROOT, STORIES260K } from './shared-models.js';

export const CLI_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'swarmbee.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The built code that `model import llama2c` runs: a change to it makes a new fixture. */
const IMPORTER_CODE = ['cli', 'core', 'model'].map((name) =>
  join(REPO_ROOT, 'packages', name, 'dist'),
);

/**
 * stories260K imported through `swarmbee model import llama2c`, copied to `<root>/s260k`. The
 * import runs once per checkpoint, tokenizer and importer code (see fixture-cache.ts);
 * test/cli-model.test.ts runs and checks the import command itself.
 */
export async function importStories260k(root: string): Promise<string> {
  const key = await contentKey([STORIES260K.checkpoint, STORIES260K.tokenizer, ...IMPORTER_CODE]);
  const cached = await cachedFixture('stories260k', key, async (out) => {
    const result = await runCli([
      'model',
      'import',
      'llama2c',
      STORIES260K.checkpoint,
      '--tokenizer',
      STORIES260K.tokenizer,
      '--out',
      out,
    ]);
    if (result.code !== 0) throw new Error(`importing stories260K failed: ${result.stderr}`);
  });
  return copyFixture(cached, join(root, 's260k'));
}
