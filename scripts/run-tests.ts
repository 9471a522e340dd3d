/**
 * Runs the test suite: every test file in its own Node process, `--jobs` at a time, with the
 * Node arguments, file globs and per-file timeout of package.json's `tap` section. `npm test`
 * runs it after the build, lint and type check; `npx tap FILE` still runs one file.
 *
 *     node --import tsx scripts/run-tests.ts [--jobs N] [--json FILE] [FILE...]
 *
 * Why not tap's runner: it starts each file with its processinfo loader, which passes every
 * module a process (and each of its threads) loads through a loader thread, to record which
 * files ran, for coverage and `tap --changed`. The suite runs without coverage, so nothing
 * read that record, and it cost ~0.7 s of CPU per file (~2 s for files whose threads load the
 * engine). A file run here is the same program tap would run: tap's own library prints its
 * TAP, fails with a non-zero exit code, and honours TAP_TIMEOUT.
 *
 * Files from test/ (the end-to-end ones, slowest) start first, so that the last minutes are
 * not one long file alone. A failed file's whole output is printed; at the end, a table of
 * the slowest files and the totals, and with `--json` every file's time and result.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
/** Test files run at once by default: the cores, at least 2. */
const DEFAULT_JOBS = Math.max(2, availableParallelism());
/** A file still running this long after its TAP_TIMEOUT is killed, ms. */
const KILL_GRACE_MS = 30_000;

interface TapConfig {
  'node-arg': string[];
  include: string[];
  timeout: number;
}

interface FileResult {
  file: string;
  ok: boolean;
  /** Wall time, s. */
  seconds: number;
  /** Assertions passed and failed, as the file's final TAP comment counts them. */
  pass: number;
  fail: number;
  /** Why it failed, beyond failed assertions: an exit signal or code, a kill. */
  reason?: string;
}

function usage(message: string): never {
  process.stderr.write(
    `run-tests: ${message}\nusage: node --import tsx scripts/run-tests.ts [--jobs N] [--json FILE] [FILE...]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { jobs: number; json?: string; files: string[] } {
  let jobs = DEFAULT_JOBS;
  let json: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--jobs') {
      jobs = Number(argv[++i]);
      if (!Number.isInteger(jobs) || jobs < 1) usage('--jobs takes a positive whole number');
    } else if (arg === '--json') {
      json = argv[++i] ?? usage('--json takes a file name');
    } else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
    else files.push(relative(ROOT, resolve(arg)));
  }
  return { jobs, ...(json === undefined ? {} : { json }), files };
}

/** A glob of package.json's `tap.include` as a RegExp: `*` within a folder, `**` and a slash any folders. */
function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const pattern = escaped.replace(/\*\*\/|\*/g, (m) => (m === '*' ? '[^/]*' : '(?:.+/)?'));
  return new RegExp(`^${pattern}$`);
}

function testFiles(include: string[]): string[] {
  const patterns = include.map(globToRegExp);
  const found: string[] = [];
  for (const top of ['packages', 'test']) {
    for (const entry of readdirSync(join(ROOT, top), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = relative(ROOT, join(entry.parentPath, entry.name));
      if (path.includes('node_modules') || path.includes('/dist/')) continue;
      if (patterns.some((p) => p.test(path))) found.push(path);
    }
  }
  // End-to-end files first, then each group by name.
  return found.sort(
    (a, b) => Number(!a.startsWith('test/')) - Number(!b.startsWith('test/')) || a.localeCompare(b),
  );
}

function runFile(
  file: string,
  config: TapConfig,
  running: Set<ChildProcess>,
): Promise<FileResult & { output: string }> {
  const started = performance.now();
  // Its own process group: when the file ends (or is killed for its timeout, or the run is
  // interrupted), the workers and coordinators it started end with it, not left running.
  const child = spawn(process.execPath, [...config['node-arg'], file], {
    detached: true,
    cwd: ROOT,
    env: { ...process.env, TAP_TIMEOUT: String(config.timeout) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  let killed = false;
  const killer = setTimeout(
    () => {
      killed = true;
      killGroup(child);
    },
    config.timeout * 1000 + KILL_GRACE_MS,
  );
  return new Promise((resolveResult) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      running.delete(child);
      // Whatever it left running (a file that timed out, or leaked a process) ends with it;
      // a file that ended by itself and left processes behind is told of them.
      const left = killed ? [] : groupMembers(child.pid!);
      killGroup(child);
      const output = Buffer.concat(chunks).toString();
      const counts = /^# \{ total: \d+(?:, pass: (\d+))?(?:, fail: (\d+))?/m.exec(
        output.slice(-4000),
      );
      const reason = killed
        ? `killed ${KILL_GRACE_MS / 1000} s after its ${config.timeout} s timeout`
        : signal
          ? `ended by ${signal}`
          : code !== 0
            ? `exit code ${code}`
            : left.length > 0
              ? `left ${left.length} process(es) running: ${left.join('; ')}`
              : undefined;
      resolveResult({
        file,
        ok: reason === undefined,
        seconds: (performance.now() - started) / 1000,
        pass: Number(counts?.[1] ?? 0),
        fail: Number(counts?.[2] ?? 0),
        ...(reason === undefined ? {} : { reason }),
        output,
      });
    });
  });
}

/**
 * The live processes of process group `group` (not zombies), each as `pid command line`.
 * Read from /proc; elsewhere, none are found.
 */
function groupMembers(group: number): string[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const members: string[] = [];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …: comm may hold spaces, so read after its ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== group || state === 'Z') continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      members.push(`${pid} ${command.slice(0, 160)}`);
    } catch {
      // the process ended while being read
    }
  }
  return members;
}

/** SIGKILL to a test file's process and every process it started (its process group). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL'); // the group is gone already, or the platform has none
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join('  '),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).tap as TapConfig;
  const files = args.files.length > 0 ? args.files : testFiles(config.include);
  if (files.length === 0) usage('no test files');
  const running = new Set<ChildProcess>();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      for (const child of running) killGroup(child);
      process.exit(130);
    });
  }
  const started = performance.now();
  const results: FileResult[] = [];
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const { output, ...result } = await runFile(file, config, running);
      results.push(result);
      const mark = result.ok ? 'ok    ' : 'FAILED';
      process.stdout.write(
        `${mark} ${result.seconds.toFixed(1).padStart(6)} s  [${results.length}/${files.length}] ${file}${result.reason ? ` (${result.reason})` : ''}\n`,
      );
      if (!result.ok) process.stdout.write(`${output.trimEnd()}\n--- end of ${file} ---\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.jobs, files.length) }, worker));
  const wall = (performance.now() - started) / 1000;
  const failed = results.filter((r) => !r.ok);
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 15);
  const sum = results.reduce((s, r) => s + r.seconds, 0);
  const asserts = results.reduce((s, r) => s + r.pass, 0);
  process.stdout.write(
    `\nslowest files:\n${table([
      ['file', 'seconds'],
      ...slowest.map((r) => [r.file, r.seconds.toFixed(1)]),
    ])}\n\n${results.length} files, ${asserts} test points passed, ${failed.length} files failed; ${wall.toFixed(0)} s with ${args.jobs} jobs (the files' times sum to ${sum.toFixed(0)} s)\n`,
  );
  for (const r of failed)
    process.stdout.write(`FAILED ${r.file}: ${r.reason ?? `${r.fail} failed`}\n`);
  if (args.json)
    writeFileSync(
      args.json,
      `${JSON.stringify({ jobs: args.jobs, wallSeconds: wall, files: results }, null, 2)}\n`,
    );
  process.exitCode = failed.length > 0 ? 1 : 0;
}

await main();
