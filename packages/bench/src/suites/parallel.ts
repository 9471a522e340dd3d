/**
 * `npm run bench -- parallel` (issue 19): parallelism measured on loopback, ratios only. Its
 * parts (`--parts`, default all): `hop` — stories260K decode over N worker processes against N
 * stages in process, the time the data plane adds per hop (../parallel/hop-part.ts).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '@swarmbee/core';
import { cacheRoot } from '@swarmbee/model';
import { measureHopPart } from '../parallel/hop-part.js';
import { importStories260k, STORIES260K_CHECKPOINT } from '../shared-models.js';
import { runHeader, type Suite } from '../suite.js';

/** The suite's parts, in the order they run (`--parts`, default all). */
export const PARALLEL_SUITE_PARTS = ['hop'] as const;
export type ParallelSuitePart = (typeof PARALLEL_SUITE_PARTS)[number];

function partName(name: string): ParallelSuitePart {
  if (!(PARALLEL_SUITE_PARTS as readonly string[]).includes(name))
    throw new InvalidArgumentError(
      `--parts names ${JSON.stringify(name)}; the parallel suite's parts are ${PARALLEL_SUITE_PARTS.join(', ')}`,
    );
  return name as ParallelSuitePart;
}

export const parallelSuite: Suite = {
  name: 'parallel',
  describe:
    'part hop (--parts): stories260K decode ms/token over 1-3 worker processes on loopback against the same stages in process; ms added per network hop (target <= 0.25), bytes per hop, same greedy ids',
  async run(context) {
    const started = Date.now();
    const parts = (context.parts ?? [...PARALLEL_SUITE_PARTS]).map(partName);
    const root = join(cacheRoot(), 'bench', 'parallel');
    await mkdir(root, { recursive: true });
    const scratch = await mkdtemp(join(root, 'run-'));
    try {
      context.progress('parallel: importing stories260K');
      const model = await importStories260k(join(scratch, 'stories260K'));
      if (!model)
        throw new InvalidArgumentError(
          `the parallel suite measures stories260K, and ${STORIES260K_CHECKPOINT} is missing (set SWARMBEE_SHARED_MODELS)`,
        );
      if (!parts.includes('hop'))
        throw new InvalidArgumentError('--parts names no part of the parallel suite');
      const hop = await measureHopPart(context, model);
      return { ...hop, ...runHeader(context, started), options: { parts, ...hop.options } };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
