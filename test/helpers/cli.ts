/** Runs the built `swarmbee` CLI as a real process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
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

/** Imports stories260K through `swarmbee model import llama2c` into `<root>/s260k`. */
export async function importStories260k(root: string): Promise<string> {
  const model = join(root, 's260k');
  const result = await runCli([
    'model',
    'import',
    'llama2c',
    STORIES260K.checkpoint,
    '--tokenizer',
    STORIES260K.tokenizer,
    '--out',
    model,
  ]);
  if (result.code !== 0) throw new Error(`importing stories260K failed: ${result.stderr}`);
  return model;
}
