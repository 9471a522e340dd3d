/**
 * `npm run bench -- scale`: real model sizes on bounded memory, in three parts (`--parts`,
 * default all, in this order):
 * - `steps`: for synthetic checkpoints of the real Llama 3.2 1B and 3B shapes (and Llama 3.1
 *   8B where the disk allows), each step — import, quantize to int4 and int8, shard build —
 *   runs in a child process of its own and is measured for MB/s and peak RSS, against the
 *   target of at most {@link SCALE_RSS_TARGET_BYTES} whatever the model size (the steps are
 *   `../scale/*-part.ts`, run in order on each shape);
 * - `serve`: the shapes served by 1-3 worker processes (../scale/serve-report.ts);
 * - `transfer`: shard transfer against its link (../scale/transfer-report.ts).
 * One report holds every part's tables, checks and charts.
 */
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '@swarmbee/core';
import { cacheRoot, freeDiskBytes, type HfSynthShapeName, hfSynthTensors } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { importInt4Part, importPart } from '../scale/import-part.js';
import type { ScalePart, ScaleRow, ScaleShapeRun } from '../scale/part.js';
import { stepMbPerSecond } from '../scale/part.js';
import { quantizePart } from '../scale/quantize-part.js';
import { measureServing } from '../scale/serve-report.js';
import { shardPart } from '../scale/shard-part.js';
import { runStep } from '../scale/step.js';
import { measureTransfer } from '../scale/transfer-report.js';
import { runHeader, type Suite, type SuiteContext } from '../suite.js';

/** Peak RSS allowed to any step, whatever the model size: 1.5 GB. */
export const SCALE_RSS_TARGET_BYTES = 1.5e9;
/** The parts, in the order they run on each shape. */
export const SCALE_PARTS: ScalePart[] = [importPart, quantizePart, shardPart];
/** Where the disk cannot hold the fp32 model dir: import straight to int4, then its shards. */
export const SCALE_INT4_PARTS: ScalePart[] = [importInt4Part, shardPart];
const SEED = 0;
/**
 * Disk a shape's run needs, in checkpoint sizes: the fp32 model dir (2), int8 and int4
 * copies (about 1 together), the largest shard (1); straight to int4, the int4 dir (0.55
 * for the 8B, whose head stays fp32) and its largest shard.
 */
const RUN_DISK_CHECKPOINTS = 4;
const INT4_RUN_DISK_CHECKPOINTS = 1;
/** The shapes `--shapes` may name; the default is all three (the 1B one with `--quick`). */
export const SCALE_SHAPES: HfSynthShapeName[] = ['llama3.2-1b', 'llama3.2-3b', 'llama3.1-8b'];
/** The suite's parts, in the order they run (`--parts`, default all). */
export const SCALE_SUITE_PARTS = ['steps', 'serve', 'transfer'] as const;
export type ScaleSuitePart = (typeof SCALE_SUITE_PARTS)[number];

const MB = 1e6;

export const scaleSuite: Suite = {
  name: 'scale',
  describe:
    'parts steps, serve, transfer (--parts): Llama 3.2 1B and 3B shapes (8B where the disk allows) imported, quantized to int4/int8 and sharded (MB/s, peak RSS <= 1.5 GB), served over 1-3 workers (worker RSS <= shard + KV + 250 MB, decode against the roofline, TTFT), shard transfer against its link (>= 0.8)',
  async run(context) {
    const started = Date.now();
    const parts = (context.parts ?? [...SCALE_SUITE_PARTS]).map(partName);
    const shapes = (context.shapes ?? (context.quick ? ['llama3.2-1b'] : SCALE_SHAPES)).map(
      shapeName,
    );
    const results: BenchResult[] = [];
    if (parts.includes('steps')) results.push(await measureSteps(context, shapes));
    if (parts.includes('serve')) results.push(await measureServing(context, shapes));
    if (parts.includes('transfer')) results.push(await measureTransfer(context));
    return merged(context, started, { parts, shapes }, results);
  },
};

/** One report of the parts' results: their notes, metrics, tables, checks and charts in order. */
function merged(
  context: SuiteContext,
  started: number,
  options: { parts: ScaleSuitePart[]; shapes: HfSynthShapeName[] },
  results: BenchResult[],
): BenchResult {
  return {
    suite: 'scale',
    title: 'Scale: real model sizes on bounded memory',
    ...runHeader(context, started),
    options: {
      quick: context.quick,
      ...options,
      ...Object.fromEntries(results.map((r, i) => [options.parts[i] ?? i, r.options])),
    },
    notes: results.flatMap((r) => r.notes),
    metrics: Object.assign({}, ...results.map((r) => r.metrics)),
    tables: results.flatMap((r) => r.tables),
    checks: results.flatMap((r) => r.checks),
    charts: results.flatMap((r) => r.charts),
  };
}

function partName(name: string): ScaleSuitePart {
  if (!(SCALE_SUITE_PARTS as readonly string[]).includes(name))
    throw new InvalidArgumentError(
      `--parts names ${JSON.stringify(name)}; the scale suite's parts are ${SCALE_SUITE_PARTS.join(', ')}`,
    );
  return name as ScaleSuitePart;
}

/** The steps part: import, quantize and shard build of each shape, each in its own process. */
async function measureSteps(
  context: SuiteContext,
  shapes: HfSynthShapeName[],
): Promise<BenchResult> {
  const started = Date.now();
  const cache = join(cacheRoot(), 'bench', 'scale');
  await mkdir(cache, { recursive: true });
  const notes: string[] = [
    'Synthetic checkpoints (`swarmbee model synth-hf`, seed 0): the real config.json, tensor shapes and bf16 dtype of each model, random weights. Checkpoints are kept in the cache for the next run (the 8B one is deleted after measuring); every model dir and shard is deleted when its shape is done.',
    'Each step runs in a fresh Node process; peak RSS is that process\'s getrusage maxrss (Node and the modules included: "baseline" is the peak before the step began). MB/s: the larger of bytes read and written, decimal MB, per wall-clock second.',
  ];
  const rows: ScaleRow[] = [];
  for (const shape of shapes) {
    const checkpointBytes = hfSynthTensors(shape).reduce(
      (sum, t) => sum + 2 * t.shape.reduce((a, b) => a * b, 1),
      0,
    );
    const checkpoint = join(cache, `${shape}-seed${SEED}`);
    const cached = await access(join(checkpoint, 'model.safetensors.index.json')).then(
      () => true,
      () => false,
    );
    const synth = cached ? 0 : checkpointBytes;
    const need = synth + RUN_DISK_CHECKPOINTS * checkpointBytes;
    const needInt4 = synth + INT4_RUN_DISK_CHECKPOINTS * checkpointBytes;
    const free = await freeDiskBytes(cache);
    const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;
    if (needInt4 > free) {
      notes.push(
        `${shape} skipped: even straight to int4 its run needs about ${gb(needInt4)} of disk and ${gb(free)} are free.`,
      );
      continue;
    }
    const parts = need > free ? SCALE_INT4_PARTS : SCALE_PARTS;
    if (need > free)
      notes.push(
        `${shape}: imported straight to int4 (\`model import hf --bits 4\`), no fp32 model dir or int8: its full run needs about ${gb(need)} of disk (checkpoint, fp32 dir, int8 and int4, a shard) and ${gb(free)} were free.`,
      );
    if (!cached) {
      context.progress(
        `scale: writing the ${shape} checkpoint (${(checkpointBytes / 1e9).toFixed(1)} GB)`,
      );
      const measurement = await runStep({ kind: 'synth', shape, seed: SEED, out: checkpoint });
      rows.push({ shape, step: 'synth-hf', detail: 'bf16', measurement });
    }
    const run: ScaleShapeRun = {
      shape,
      checkpoint,
      checkpointBytes,
      root: await mkdtemp(join(cache, `run-${shape}-`)),
      quantized: {},
    };
    try {
      for (const part of parts) rows.push(...(await part.run(run, context)));
    } finally {
      await rm(run.root, { recursive: true, force: true });
      if (shape === 'llama3.1-8b') await rm(checkpoint, { recursive: true, force: true });
    }
  }
  return scaleResult(context, started, rows, notes);
}

function shapeName(name: string): HfSynthShapeName {
  if (!(SCALE_SHAPES as string[]).includes(name))
    throw new InvalidArgumentError(
      `--shapes names ${JSON.stringify(name)}; the scale suite runs ${SCALE_SHAPES.join(', ')}`,
    );
  return name as HfSynthShapeName;
}

function scaleResult(
  context: SuiteContext,
  started: number,
  rows: ScaleRow[],
  notes: string[],
): BenchResult {
  const label = (r: ScaleRow) => `${r.shape} ${r.step} ${r.detail}`;
  return {
    suite: 'scale',
    title: 'Scale: real model sizes on bounded memory',
    ...runHeader(context, started),
    options: {
      shapes: [...new Set(rows.map((r) => r.shape))],
      rssTargetBytes: SCALE_RSS_TARGET_BYTES,
    },
    notes,
    metrics: Object.fromEntries(
      rows.flatMap((r) => {
        const one = (value: number) => summarize([value]);
        return [
          [`${label(r)} MB/s`, { unit: 'MB/s', summary: one(stepMbPerSecond(r.measurement)) }],
          [`${label(r)} peak RSS`, { unit: 'MB', summary: one(r.measurement.peakRssBytes / MB) }],
        ];
      }),
    ),
    tables: [
      {
        title: 'Steps, each in its own process',
        head: [
          'shape',
          'step',
          'what',
          'in MB',
          'out MB',
          's',
          'MB/s',
          'peak RSS MB',
          'baseline MB',
          'RSS ≤ 1.5 GB',
        ],
        rows: rows.map((r) => {
          const m = r.measurement;
          return [
            r.shape,
            r.step,
            r.detail,
            (m.inBytes / MB).toFixed(0),
            (m.outBytes / MB).toFixed(0),
            m.seconds.toFixed(1),
            stepMbPerSecond(m).toFixed(0),
            (m.peakRssBytes / MB).toFixed(0),
            (m.baselineRssBytes / MB).toFixed(0),
            m.peakRssBytes <= SCALE_RSS_TARGET_BYTES ? 'yes' : 'NO',
          ];
        }),
      },
    ],
    checks: rows.map((r) =>
      check(
        `${label(r)}: peak RSS (GB)`,
        r.measurement.peakRssBytes / 1e9,
        SCALE_RSS_TARGET_BYTES / 1e9,
        'getrusage maxrss of the step process',
        '<=',
      ),
    ),
    charts: [
      {
        file: 'scale-rss.svg',
        title: 'Peak RSS per step',
        svg: barChart({
          title: 'Peak RSS per step (target ≤ 1500 MB)',
          unit: 'MB',
          bars: rows.map((r) => ({
            label: `${r.shape.replace('llama', '')} ${r.step === 'shard build' ? 'shard' : r.step} ${r.detail.replace(/ \[.*/, '')}`,
            value: r.measurement.peakRssBytes / MB,
          })),
        }),
      },
      {
        file: 'scale-throughput.svg',
        title: 'MB/s per step',
        svg: barChart({
          title: 'Throughput per step',
          unit: 'MB/s',
          bars: rows.map((r) => ({
            label: `${r.shape.replace('llama', '')} ${r.step === 'shard build' ? 'shard' : r.step} ${r.detail.replace(/ \[.*/, '')}`,
            value: stepMbPerSecond(r.measurement),
          })),
        }),
      },
    ],
  };
}
