/**
 * `npm run bench -- pipeline`: the 110M preset over worker processes on
 * loopback, each pinned to one core with one onnxruntime thread, against the
 * in-process engine pinned the same way.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  BENCH_PRESET,
  cachedSynthModel,
  cacheRoot,
  DEFAULT_SYNTH_SEED,
  type ModelDir,
} from '@swarmbee/model';
import { LocalCluster } from '../local-cluster.js';
import { machineInfo } from '../machine.js';
import { type BenchCheck, check } from '../report/report.js';
import { barChart, lineChart } from '../report/svg.js';
import { type Summary, summarize } from '../stats.js';
import type { Suite, SuiteContext } from '../suite.js';

const PROMPT_TOKENS = 16;

interface CompletionTimings {
  completionTokens: number;
  tokensPerSecond: number;
}

/** A seeded prompt of token ids, different for each stream. */
function promptIds(stream: number, vocab: number): number[] {
  return [
    1,
    ...Array.from(
      { length: PROMPT_TOKENS - 1 },
      (_, i) => 3 + ((stream * 7919 + i * 104_729) % (vocab - 3)),
    ),
  ];
}

async function complete(
  apiUrl: string,
  prompt: number[],
  maxTokens: number,
): Promise<CompletionTimings> {
  const response = await fetch(`${apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  const json = (await response.json()) as {
    usage: { completion_tokens: number };
    timings: { tokens_per_s: number };
    error?: { message: string };
  };
  if (!response.ok) throw new Error(`completion failed: ${json.error?.message}`);
  return {
    completionTokens: json.usage.completion_tokens,
    tokensPerSecond: json.timings.tokens_per_s,
  };
}

/** The in-process engine: `swarmbee generate` pinned to core 0 with one thread. */
function inProcessRun(context: SuiteContext, model: ModelDir, tokens: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [
      '-c',
      '0',
      process.execPath,
      context.cliBin,
      'generate',
      '--model',
      model.path,
      '--prompt-ids',
      promptIds(0, model.manifest.config.vocabSize).join(','),
      '--steps',
      String(PROMPT_TOKENS + tokens - 1),
      '--temperature',
      '0',
      '--threads',
      '1',
      '--json',
    ];
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`in-process generate exited with ${code}`));
      else resolve((JSON.parse(out) as { tokens_per_s: number }).tokens_per_s);
    });
  });
}

interface ClusterFigures {
  stages: number;
  singleStream: Summary;
  /** Aggregate tokens/s by concurrent streams. */
  concurrent: Map<number, Summary>;
  bytesPerTokenPerHop?: number;
}

async function measureCluster(
  context: SuiteContext,
  model: ModelDir,
  stages: number,
  tokens: number,
  repeats: number,
  streams: number[],
): Promise<ClusterFigures> {
  context.progress(`pipeline: starting ${stages} worker(s), each on its own core`);
  const cluster = await LocalCluster.start({
    model,
    workers: stages,
    cliBin: context.cliBin,
    cacheDir: join(cacheRoot(), 'bench'),
    threads: 1,
    pinCores: true,
    workerOutput: 'ignore',
  });
  const vocab = model.manifest.config.vocabSize;
  try {
    await complete(cluster.apiUrl, promptIds(0, vocab), 16); // warm-up, excluded
    const single: number[] = [];
    const before = await cluster.coordinator.workerStats();
    let generated = 0;
    for (let r = 0; r < repeats; r++) {
      context.progress(`pipeline: ${stages} stage(s), one stream, run ${r + 1}/${repeats}`);
      const result = await complete(cluster.apiUrl, promptIds(0, vocab), tokens);
      single.push(result.tokensPerSecond);
      generated += result.completionTokens;
    }
    const after = await cluster.coordinator.workerStats();
    const figures: ClusterFigures = {
      stages,
      singleStream: summarize(single),
      concurrent: new Map(),
    };
    if (stages > 1) {
      const first = cluster.coordinator.deployment[0]!.worker;
      // Stage 0's frames carry a hidden state per token; prefill frames count too, spread over the tokens.
      figures.bytesPerTokenPerHop =
        ((after[first]?.bytesSent ?? 0) - (before[first]?.bytesSent ?? 0)) /
        (generated + repeats * PROMPT_TOKENS);
    }
    for (const count of streams) {
      const rates: number[] = [];
      for (let r = 0; r < repeats; r++) {
        context.progress(
          `pipeline: ${stages} stage(s), ${count} concurrent streams, run ${r + 1}/${repeats}`,
        );
        const started = performance.now();
        const results = await Promise.all(
          Array.from({ length: count }, (_, s) =>
            complete(cluster.apiUrl, promptIds(s + 1, vocab), tokens),
          ),
        );
        const seconds = (performance.now() - started) / 1000;
        rates.push(results.reduce((n, x) => n + x.completionTokens, 0) / seconds);
      }
      figures.concurrent.set(count, summarize(rates));
    }
    return figures;
  } finally {
    await cluster.stop();
  }
}

export const pipelineSuite: Suite = {
  name: 'pipeline',
  describe:
    '110M preset over pinned single-thread worker processes: loopback cost, hop latency, pipelined throughput, bytes per hop',
  async run(context) {
    const started = Date.now();
    const repeats = context.quick ? 1 : 3;
    const tokens = context.quick ? 32 : 96;
    const streams = context.quick ? [4] : [4, 8];
    context.progress(
      `pipeline: preparing the ${BENCH_PRESET} synthetic model (cached after the first run)`,
    );
    const model = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    const inProcess: number[] = [];
    await inProcessRun(context, model, 16); // warm-up: page cache, onnxruntime start
    for (let r = 0; r < repeats; r++) {
      context.progress(`pipeline: in-process engine (core 0, 1 thread), run ${r + 1}/${repeats}`);
      inProcess.push(await inProcessRun(context, model, tokens));
    }
    const baseline = summarize(inProcess);
    const one = await measureCluster(context, model, 1, tokens, repeats, streams);
    const two = await measureCluster(context, model, 2, tokens, repeats, streams);
    const dim = model.manifest.config.dim;
    const checkStreams = streams.at(-1)!;
    const checks: BenchCheck[] = [
      check(
        '1 stage over loopback vs in-process engine',
        one.singleStream.median / baseline.median,
        0.9,
        'decode tok/s, 1 worker / in-process, batch 1',
      ),
      check(
        '2 stages: per-token latency vs 1 stage',
        one.singleStream.median / two.singleStream.median,
        1.1,
        'ms/token with 2 stages / ms/token with 1',
        '<=',
      ),
      check(
        `2 stages vs 1 with ${checkStreams} streams`,
        two.concurrent.get(checkStreams)!.median / one.concurrent.get(checkStreams)!.median,
        1.7,
        'aggregate decode tok/s, 2 stages / 1 stage',
      ),
      check(
        'bytes per token per hop',
        two.bytesPerTokenPerHop ?? 0,
        dim * 4 + 512,
        `stage 0 bytes sent / tokens it forwarded (limit: hidden ${dim} x 4 + 512)`,
        '<=',
      ),
    ];
    const fmt = (v: number) => v.toFixed(1);
    const rows: (string | number)[][] = [
      [
        'in-process engine',
        1,
        fmt(baseline.median),
        `${fmt(baseline.min)}..${fmt(baseline.max)}`,
        '-',
        '-',
      ],
      ...[one, two].map((f) => [
        `${f.stages} worker process(es)`,
        1,
        fmt(f.singleStream.median),
        `${fmt(f.singleStream.min)}..${fmt(f.singleStream.max)}`,
        (1000 / f.singleStream.median).toFixed(2),
        f.bytesPerTokenPerHop === undefined ? '-' : f.bytesPerTokenPerHop.toFixed(0),
      ]),
    ];
    const throughputRows = streams.map((count) => [
      count,
      fmt(one.concurrent.get(count)!.median),
      fmt(two.concurrent.get(count)!.median),
      (two.concurrent.get(count)!.median / one.concurrent.get(count)!.median).toFixed(2),
    ]);
    return {
      suite: 'pipeline',
      title: 'Pipeline: worker processes on loopback, one core and one thread each',
      command: context.command,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      machine: machineInfo(),
      model: {
        name: model.manifest.name,
        modelHash: model.manifest.modelHash,
        weightBytes: model.manifest.weights.bytes,
        source: `synthetic preset ${BENCH_PRESET}`,
      },
      options: { repeats, tokens, streams, promptTokens: PROMPT_TOKENS },
      notes: [
        `Each stream: a ${PROMPT_TOKENS}-token prompt, then ${tokens} greedy tokens. Medians of ${repeats} run(s); spread is min..max. One warm-up request per cluster is excluded.`,
        'Workers are pinned with taskset (worker i on core i) and run one onnxruntime thread; the coordinator runs unpinned in the benchmark process.',
        'Single-stream tok/s excludes the first token (as run.c reports); aggregate tok/s is all completion tokens over the wall time of the concurrent run.',
        'For reference (not measured here): llama.cpp RPC with two single-thread servers decodes this shape at about 43 tok/s for one stream; one llama.cpp process about 70 with 2 threads.',
      ],
      metrics: {
        inProcessTokensPerSecond: { unit: 'tok/s', summary: baseline, samples: inProcess },
        oneStageTokensPerSecond: { unit: 'tok/s', summary: one.singleStream },
        twoStageTokensPerSecond: { unit: 'tok/s', summary: two.singleStream },
        ...Object.fromEntries(
          streams.flatMap((count) => [
            [
              `oneStageAggregate.streams${count}`,
              { unit: 'tok/s', summary: one.concurrent.get(count)! },
            ],
            [
              `twoStageAggregate.streams${count}`,
              { unit: 'tok/s', summary: two.concurrent.get(count)! },
            ],
          ]),
        ),
      },
      tables: [
        {
          title: 'One stream',
          head: ['setup', 'streams', 'tok/s', 'spread', 'ms/token', 'bytes/token/hop'],
          rows,
        },
        {
          title: 'Concurrent streams (aggregate decode tok/s)',
          head: ['streams', '1 stage', '2 stages', 'ratio'],
          rows: throughputRows,
        },
      ],
      checks,
      charts: [
        {
          file: 'single-stream.svg',
          title: 'One stream',
          svg: barChart({
            title: 'One stream: decode tokens/s',
            unit: 'tokens/s',
            bars: [
              {
                label: 'in-process',
                value: baseline.median,
                low: baseline.min,
                high: baseline.max,
              },
              ...[one, two].map((f) => ({
                label: `${f.stages} stage(s)`,
                value: f.singleStream.median,
                low: f.singleStream.min,
                high: f.singleStream.max,
              })),
            ],
          }),
        },
        {
          file: 'throughput-vs-streams.svg',
          title: 'Aggregate throughput against concurrent streams',
          svg: lineChart({
            title: 'Aggregate decode tokens/s',
            xLabel: 'concurrent streams',
            yLabel: 'tokens/s',
            series: [one, two].map((f) => ({
              name: `${f.stages} stage(s)`,
              points: [
                [1, f.singleStream.median] as [number, number],
                ...streams.map((c) => [c, f.concurrent.get(c)!.median] as [number, number]),
              ],
            })),
          }),
        },
      ],
    };
  },
};
