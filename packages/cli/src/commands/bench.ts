/**
 * `swarmbee bench`: latency and throughput of a running cluster (`--url`) or of
 * one it starts on loopback (`--local`), the repository's suites (`--suite`),
 * and the ratios between two saved runs (`--compare`). Tables on the terminal,
 * reports (JSON, Markdown, SVG) on disk.
 */
import { join } from 'node:path';
import {
  type BenchResult,
  compareResults,
  coresBySpeed,
  DEFAULT_MATRIX,
  loadResult,
  type Matrix,
  runClusterBench,
  SUITES,
  writeReport,
} from '@swarmbee/bench';
import { InvalidArgumentError } from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import { cacheRoot } from '@swarmbee/model';
import type { Argv } from 'yargs';
import { linkShapeFrom, linkShapeOptions } from '../bench-flags.js';
import { resolveModel } from '../model-arg.js';
import { withProgress } from '../ui/progress.js';
import { renderTable } from '../ui/table.js';
import { CLI_BIN } from './up.js';

const list = (text: string | undefined, fallback: number[], flag: string): number[] => {
  if (text === undefined) return fallback;
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1))
    throw new InvalidArgumentError(`--${flag}: "${text}" is not a list of positive integers`);
  return values;
};

export function benchCommand(yargs: Argv): Argv {
  return yargs.command(
    'bench',
    'Benchmark a cluster (--url, or --local to start one), a repository suite (--suite), or compare two runs (--compare)',
    (y) =>
      y
        .option('url', { type: 'string', describe: "A running coordinator's API URL to benchmark" })
        .option('api-key', { type: 'string', describe: "With --url: the API's bearer key" })
        .option('local', {
          type: 'boolean',
          default: false,
          describe:
            'Start a cluster on loopback (coordinator + --workers processes) and benchmark it',
        })
        .option('workers', {
          type: 'number',
          default: 2,
          describe: 'With --local: worker processes',
        })
        .option('model', {
          type: 'string',
          describe: 'With --local: model dir (default: the embedded default model)',
        })
        .option('threads', {
          type: 'number',
          default: 1,
          describe: 'With --local: onnxruntime threads per worker',
        })
        .option('speed-factors', {
          type: 'string',
          describe:
            'With --local, BENCHMARKS/TESTS ONLY: per-worker speed, e.g. 1,0.5,0.25 (idle after each forward pass; with fewer cores than workers, the slower ones share cores)',
        })
        .options(linkShapeOptions)
        .option('prompt-lengths', {
          type: 'string',
          describe: `Prompt lengths, tokens (default ${DEFAULT_MATRIX.promptTokens.join(',')})`,
        })
        .option('output-lengths', {
          type: 'string',
          describe: `Output lengths, tokens (default ${DEFAULT_MATRIX.outputTokens.join(',')})`,
        })
        .option('concurrency', {
          type: 'string',
          describe: `Concurrent streams (default ${DEFAULT_MATRIX.concurrency.join(',')})`,
        })
        .option('repeats', {
          type: 'number',
          default: DEFAULT_MATRIX.repeats,
          describe: 'Rounds per cell',
        })
        .option('plans', {
          type: 'boolean',
          default: false,
          describe:
            'Also sweep plans (solo, even, memory share, DP latency, DP throughput): predicted against measured',
        })
        .option('timeline', {
          type: 'boolean',
          default: true,
          describe: 'Record a per-stage timeline of one run (--no-timeline skips it)',
        })
        .option('suite', {
          type: 'string',
          choices: Object.keys(SUITES),
          describe: "Run one of the repository's suites instead (npm run bench -- <suite>)",
        })
        .option('quick', {
          type: 'boolean',
          default: false,
          describe: 'With --suite: fewer repetitions, noisier figures',
        })
        .option('gguf-dir', {
          type: 'string',
          describe:
            'With --suite gguf: directory of *-f32.gguf, *-q8_0.gguf and *-q4_0.gguf of one model (default: $SWARMBEE_GGUF_BENCH_DIR, else ../shared/models/gguf); with --suite engine: llama.cpp runs these instead of files it makes from the benchmark model',
        })
        .option('llama-cpp', {
          type: 'string',
          describe:
            'With --suite gguf or engine: llama.cpp directory holding llama-bench (and, for engine, llama-convert-llama2c-to-ggml and llama-quantize), run on the same weights as the same-run peer (default: $SWARMBEE_LLAMA_CPP, else llama-bench on PATH; none: no peer figures)',
        })
        .option('shard-mib', {
          type: 'number',
          describe:
            'With --suite scale, its transfer part: size of the shard sent whole over the shaped 100 Mbit/s link, MiB (default 4096, about six minutes; 256 with --quick)',
        })
        .option('parts', {
          type: 'string',
          describe:
            'With --suite scale: its parts to run, comma-separated, of steps (import, quantize, shard build), serve, transfer (default: all three); with --suite parallel: hop, allreduce, plan, tp (default: all); with --suite finetune: pipeline, cluster, federated, resources (default: all)',
        })
        .option('shapes', {
          type: 'string',
          describe:
            'With --suite scale: model shapes, comma-separated, of llama3.2-1b, llama3.2-3b, llama3.1-8b (default: all three, or llama3.2-1b with --quick)',
        })
        .option('compare', {
          type: 'array',
          string: true,
          describe: 'Two result.json files: print every shared metric and the ratio B/A',
        })
        .option('out', {
          type: 'string',
          describe: 'Report directory (default: bench-results/<name>-<timestamp>)',
        }),
    async (args) => {
      if (args.compare) return compare(args.compare as string[]);
      const progress = (line: string) => process.stderr.write(`${line}\n`);
      let result: BenchResult;
      if (args.suite) {
        const suite = SUITES[args.suite];
        if (!suite) throw new InvalidArgumentError(`no benchmark suite named ${args.suite}`);
        result = await suite.run({
          quick: args.quick,
          progress,
          command: `swarmbee ${process.argv.slice(2).join(' ')}`,
          cliBin: CLI_BIN,
          ...(args.ggufDir ? { ggufDir: args.ggufDir } : {}),
          ...(args.llamaCpp ? { llamaCppDir: args.llamaCpp } : {}),
          ...(args.shardMib === undefined ? {} : { shardMib: args.shardMib }),
          ...(args.parts === undefined ? {} : { parts: args.parts.split(',') }),
          ...(args.shapes === undefined ? {} : { shapes: args.shapes.split(',') }),
        });
      } else {
        const matrix: Matrix = {
          promptTokens: list(args.promptLengths, DEFAULT_MATRIX.promptTokens, 'prompt-lengths'),
          outputTokens: list(args.outputLengths, DEFAULT_MATRIX.outputTokens, 'output-lengths'),
          concurrency: list(args.concurrency, DEFAULT_MATRIX.concurrency, 'concurrency'),
          repeats: args.repeats,
        };
        const command = `swarmbee ${process.argv.slice(2).join(' ')}`;
        const bench = { matrix, plans: args.plans, timeline: args.timeline, command, progress };
        if (args.url) {
          result = await runClusterBench({
            ...bench,
            target: { url: args.url, apiKey: args.apiKey as string | undefined },
            setup: [`Cluster at ${args.url}.`],
          });
        } else if (args.local) {
          result = await benchLocal(args, bench);
        } else {
          throw new InvalidArgumentError(
            'say what to benchmark: --url URL, --local, --suite NAME, or --compare A.json B.json',
          );
        }
      }
      process.stdout.write(formatResult(result));
      const out =
        args.out ??
        join('bench-results', `${result.suite}-${result.startedAt.replace(/[:.]/g, '-')}`);
      const files = await writeReport(out, result);
      process.stdout.write(`\nreport: ${files.join(', ')}\n`);
    },
  );
}

async function benchLocal(
  args: {
    workers: number;
    model?: string;
    threads: number;
    speedFactors?: string;
    linkDelayMs?: number;
    linkBandwidthMbit?: number;
  },
  bench: Omit<Parameters<typeof runClusterBench>[0], 'target' | 'setup'>,
): Promise<BenchResult> {
  const model = await resolveModel(args.model, (line) => process.stderr.write(`${line}\n`));
  const speeds = args.speedFactors?.split(',').map(Number);
  if (speeds && (speeds.length !== args.workers || speeds.some((s) => !(s > 0 && s <= 1)))) {
    throw new InvalidArgumentError(
      `--speed-factors needs ${args.workers} numbers in (0, 1], got "${args.speedFactors}"`,
    );
  }
  const shape = linkShapeFrom(args);
  const shapeArgs = [
    ...(args.linkDelayMs === undefined ? [] : ['--link-delay-ms', String(args.linkDelayMs)]),
    ...(args.linkBandwidthMbit === undefined
      ? []
      : ['--link-bandwidth-mbit', String(args.linkBandwidthMbit)]),
  ];
  const cluster = await withProgress(() =>
    LocalCluster.start({
      model,
      workers: args.workers,
      cliBin: CLI_BIN,
      cacheDir: join(cacheRoot(), 'bench', 'local'),
      threads: args.threads,
      pinCores: speeds ? coresBySpeed(speeds) : true,
      workerOutput: 'ignore',
      workerArgs: (i) => [...(speeds ? ['--speed-factor', String(speeds[i])] : []), ...shapeArgs],
      coordinator: {
        planning: { planner: 'even' },
        ...(shape ? { linkShape: shape } : {}),
        limits: { maxActive: 256 },
      },
    }),
  );
  try {
    const setup = [
      `Local cluster: ${args.workers} worker process(es) on loopback, each pinned to a core with ${args.threads} onnxruntime thread(s); the coordinator in the benchmark process.`,
      ...(speeds
        ? [`Worker speed factors ${speeds.join(', ')} (emulated: idling after each forward pass).`]
        : []),
      ...(shape
        ? [
            `Links shaped in user space: ${args.linkBandwidthMbit ?? 'unlimited'} Mbit/s, ${args.linkDelayMs ?? 0} ms one way.`,
          ]
        : []),
    ];
    return await runClusterBench({ ...bench, target: { url: cluster.apiUrl }, setup });
  } finally {
    await cluster.stop();
  }
}

async function compare(files: string[]): Promise<void> {
  if (files.length !== 2)
    throw new InvalidArgumentError('--compare takes exactly two result.json files');
  const [a, b] = await Promise.all(files.map(loadResult));
  const rows = compareResults(a!, b!).map((r) => [
    r.metric,
    r.unit,
    r.a.toPrecision(4),
    r.b.toPrecision(4),
    r.ratio.toFixed(3),
  ]);
  if (rows.length === 0)
    throw new InvalidArgumentError(`${files[0]} and ${files[1]} share no metric`);
  process.stdout.write(
    `A: ${a!.title} (${a!.startedAt})\nB: ${b!.title} (${b!.startedAt})\n${renderTable(['metric', 'unit', 'A median', 'B median', 'B / A'], rows)}\n`,
  );
}

export function formatResult(result: BenchResult): string {
  const parts = [`${result.title}\n`];
  for (const table of result.tables)
    parts.push(`${table.title}\n${renderTable(table.head, table.rows)}\n`);
  if (result.checks.length > 0) {
    const rows = result.checks.map((c) => [
      c.name,
      c.value.toFixed(3),
      c.target,
      c.pass ? 'pass' : 'FAIL',
      c.how,
    ]);
    parts.push(
      `Checks (ratios against baselines from this run)\n${renderTable(['check', 'value', 'target', 'result', 'how'], rows)}\n`,
    );
  }
  parts.push(result.notes.map((n) => `- ${n}`).join('\n'));
  return `${parts.join('\n')}\n`;
}
