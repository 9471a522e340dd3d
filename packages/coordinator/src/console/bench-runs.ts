/**
 * The coordinator's recent benchmark runs, for the console's Benchmarks view: the direct
 * subdirectories of one configured directory (`--bench-dir`, where `swarmbee bench`
 * writes its reports) that hold a `result.json`. Both routes are guarded like every
 * /swarmbee route. The list is read from the directory alone (names and times, no file
 * parsed); a file is served only by a run name and a file name of a fixed shape, from a
 * real path inside the directory (a symbolic link out of it is refused), up to a size,
 * and as plain text that a browser will neither run nor render (the page shows a run's
 * SVG charts as images).
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { NotFoundError } from '@swarmbee/core';
import type { FastifyInstance } from 'fastify';

/** Most runs listed, newest first. */
export const MAX_LISTED_BENCH_RUNS = 50;
/** Largest file of a run that is served, bytes. */
export const MAX_BENCH_FILE_BYTES = 16 * 1024 * 1024;

/** A run's directory name: what `swarmbee bench` makes (`<suite>-<time>`), no dots first. */
const RUN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** The files of a run that are served: its result and its charts. */
const RUN_FILE = /^(?:result\.json|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.svg)$/;

export interface BenchRun {
  name: string;
  /** When its result.json was last written, epoch ms. */
  writtenAt: number;
}

/** The runs under `dir`, newest first. */
export async function listBenchRuns(dir: string): Promise<BenchRun[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const runs = await Promise.all(
    entries
      .filter((entry) => entry.isDirectory() && RUN_NAME.test(entry.name))
      .map(async (entry): Promise<BenchRun | undefined> => {
        const result = await stat(join(dir, entry.name, 'result.json')).catch(() => undefined);
        return result?.isFile() ? { name: entry.name, writtenAt: result.mtimeMs } : undefined;
      }),
  );
  return runs
    .filter((run): run is BenchRun => run !== undefined)
    .sort((a, b) => b.writtenAt - a.writtenAt)
    .slice(0, MAX_LISTED_BENCH_RUNS);
}

/** One file of a run, or a NOT_FOUND error that says no more than that. */
export async function readBenchFile(dir: string, run: string, file: string): Promise<Buffer> {
  const missing = () => new NotFoundError(`no benchmark file ${run}/${file}`);
  if (!RUN_NAME.test(run) || !RUN_FILE.test(file)) throw missing();
  const root = await realpath(dir).catch(() => {
    throw missing();
  });
  const path = await realpath(join(root, run, file)).catch(() => {
    throw missing();
  });
  if (!path.startsWith(`${root}${sep}`)) throw missing();
  const handle = await open(path, 'r').catch(() => {
    throw missing();
  });
  try {
    const { size } = await handle.stat();
    if (size > MAX_BENCH_FILE_BYTES) throw missing();
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

const FILE_HEADERS = {
  'content-type': 'text/plain; charset=utf-8',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "sandbox; default-src 'none'",
  'content-disposition': 'attachment',
  'cache-control': 'no-store',
};

/** `GET /swarmbee/bench` and `GET /swarmbee/bench/:run/:file`, when there is a directory. */
export function benchRunRoutes(app: FastifyInstance, dir: string | undefined): void {
  const guarded = { config: { access: 'guarded' } } as const;
  const configured = () => {
    if (dir === undefined)
      throw new NotFoundError(
        'this coordinator lists no benchmark runs (start it with --bench-dir)',
      );
    return dir;
  };
  app.get('/swarmbee/bench', guarded, async () => ({
    runs: await listBenchRuns(configured()),
  }));
  app.get<{ Params: { run: string; file: string } }>(
    '/swarmbee/bench/:run/:file',
    guarded,
    async (request, reply) => {
      const body = await readBenchFile(configured(), request.params.run, request.params.file);
      return reply.headers(FILE_HEADERS).send(body);
    },
  );
}
