/**
 * Reading the deployment files (YAML, env files, systemd units) and the facts the
 * tests check them against: which environment variables SwarmBee itself reads,
 * and whether an external checker (shellcheck, systemd-analyze) is installed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './shared-models.js';

export { REPO_ROOT };

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

export function readRepoFile(...parts: string[]): string {
  return readFileSync(repoPath(...parts), 'utf8');
}

/** Every document of a YAML file (merge keys `<<` resolved, as Compose does). */
export function readYamlDocuments(...parts: string[]): Record<string, unknown>[] {
  const documents = parseAllDocuments(readRepoFile(...parts), { merge: true });
  const out: Record<string, unknown>[] = [];
  for (const document of Array.isArray(documents) ? documents : [documents]) {
    if (document.errors.length > 0)
      throw new Error(`${parts.join('/')}: ${document.errors.map((e) => e.message).join('; ')}`);
    const value = document.toJS() as unknown;
    if (value !== null && value !== undefined) out.push(value as Record<string, unknown>);
  }
  return out;
}

/** KEY=VALUE lines of an env file (systemd EnvironmentFile= / Compose env_file). */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) vars.set(match[1]!, match[2]!);
  }
  return vars;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/**
 * The SWARMBEE_* environment variables the packages read: `env.NAME` and
 * `'NAME'` string literals (e.g. `TOKEN_ENV = 'SWARMBEE_TOKEN'`) in packages'
 * sources; error codes (SWARMBEE_ERR_*) are not variables.
 */
export function swarmbeeEnvVars(): Set<string> {
  const names = new Set<string>();
  for (const pkg of readdirSync(repoPath('packages'))) {
    for (const file of sourceFiles(repoPath('packages', pkg, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(
        /(?:env\.|['"`])(SWARMBEE_(?!ERR_)[A-Z0-9_]+)(?=['"`]|\b)/g,
      ))
        names.add(match[1]!);
    }
  }
  return names;
}

/** Variables that are not SwarmBee's own but that Node reads. */
export const NODE_ENV_VARS = new Set(['NODE_ENV', 'NODE_OPTIONS', 'UV_THREADPOOL_SIZE', 'TZ']);

interface Skippable {
  plan(count: number, comment?: string): void;
  fail(message: string): unknown;
}

/**
 * True when `command` runs. Otherwise fails the test under CI=true (.ci/run
 * installs it) and skips it with a message elsewhere, and returns false.
 */
export function haveTool(t: Skippable, command: string, debianPackage: string): boolean {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore' });
  if (!probe.error) return true;
  const message = `${command} is not installed (Debian package ${debianPackage}: apt-get install ${debianPackage})`;
  if (process.env.CI === 'true') t.fail(`${message}; CI needs it`);
  else t.plan(0, `${message}; skipping`);
  return false;
}
