/**
 * `npm run bench -- parallel` (issue 19): parallelism measured on loopback, ratios only. Its
 * parts (`--parts`, default all): `hop` — stories260K decode over N worker processes against N
 * stages in process, the time the data plane adds per hop (../parallel/hop-part.ts);
 * `allreduce` — one all-reduce of a tensor-parallel group over the data plane, k = 2, 3, 4
 * member processes, star and ring, on loopback and shaped links, beside one hop and the
 * planner's cost model (../parallel/allreduce-part.ts); `plan` — the planner's predictions and
 * choices (pipeline, tensor, hybrid) on the benchmark's scenarios (../parallel/plan-part.ts); `tp` —
 * one stream of the 110M preset over worker processes, one device against PP2, TP2 and TP4 on
 * emulated slow devices behind shaped links, and TP2 on two pinned cores (../parallel/tp-part.ts).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '@swarmbee/core';
import { BENCH_PRESET, cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import { measureAllReducePart } from '../parallel/allreduce-part.js';
import { measureHopPart } from '../parallel/hop-part.js';
import { planPart } from '../parallel/plan-part.js';
import { measureTpPart } from '../parallel/tp-part.js';
import type { BenchResult } from '../report/report.js';
import { importStories260k, STORIES260K_CHECKPOINT } from '../shared-models.js';
import { runHeader, type Suite } from '../suite.js';

/** The suite's parts, in the order they run (`--parts`, default all). */
export const PARALLEL_SUITE_PARTS = ['hop', 'allreduce', 'plan', 'tp'] as const;
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
    'parts (--parts, default all): hop — stories260K decode ms/token over 1-3 worker processes on loopback against the same stages in process, ms added per network hop (target <= 0.25), bytes per hop, same greedy ids; allreduce — one all-reduce over the data plane, k = 2-4 member processes, star and ring, loopback and shaped links, µs per call against one hop and the cost model; plan — the planner on the benchmark scenarios (110M preset, speed factor 0.25, 2 or 4 devices, 1 Gbit/s and 100 Mbit/s): one device, PP2, TP2, TP4 predicted, and its pipeline, tensor and hybrid plans per objective; tp — the 110M preset, one stream over worker processes: one device, PP2, TP2 and TP4 on devices emulated at 0.25 of a core behind 1 Gbit/s + 0.2 ms and 100 Mbit/s + 2 ms links (targets at 1 Gbit/s: TP2 <= 0.6, TP4 <= 0.4 of one device), and TP2 on two pinned cores against one (target >= 1.4)',
  async run(context) {
    const started = Date.now();
    const parts = (context.parts ?? [...PARALLEL_SUITE_PARTS]).map(partName);
    if (parts.length === 0)
      throw new InvalidArgumentError('--parts names no part of the parallel suite');
    type PartResult = Omit<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine'>;
    const results: PartResult[] = [];
    if (parts.includes('hop')) {
      const root = join(cacheRoot(), 'bench', 'parallel');
      await mkdir(root, { recursive: true });
      const scratch = await mkdtemp(join(root, 'run-'));
      try {
        context.progress('parallel: importing stories260K');
        const model = await importStories260k(join(scratch, 'stories260K'));
        if (!model)
          throw new InvalidArgumentError(
            `the parallel suite's hop part measures stories260K, and ${STORIES260K_CHECKPOINT} is missing (set SWARMBEE_SHARED_MODELS)`,
          );
        results.push(await measureHopPart(context, model));
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
    if (parts.includes('allreduce')) results.push(await measureAllReducePart(context));
    if (parts.includes('plan')) results.push(planPart(context));
    if (parts.includes('tp')) {
      context.progress(
        `parallel: preparing the ${BENCH_PRESET} synthetic model (cached after the first run)`,
      );
      results.push(
        await measureTpPart(context, await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED)),
      );
    }
    const [merged, ...rest] = results as [PartResult, ...PartResult[]];
    for (const part of rest) {
      merged.title = `${merged.title}; ${part.title.replace(/^Parallel: /, '')}`;
      merged.options = { ...merged.options, ...part.options };
      merged.notes.push(...part.notes);
      merged.metrics = { ...merged.metrics, ...part.metrics };
      merged.tables.push(...part.tables);
      merged.checks.push(...part.checks);
      merged.charts.push(...part.charts);
    }
    return { ...merged, ...runHeader(context, started), options: { parts, ...merged.options } };
  },
};
