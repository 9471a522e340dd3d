/**
 * `npm run bench -- pipeline`: the 110M preset over worker processes on
 * loopback, each pinned to one core with one onnxruntime thread, against the
 * in-process engine pinned the same way.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { postJson } from '@swarmbee/coordinator';
import { LocalCluster } from '@swarmbee/local-cluster';
import {
  BENCH_PRESET,
  cachedSynthModel,
  cacheRoot,
  DEFAULT_SYNTH_SEED,
  type ModelDir,
} from '@swarmbee/model';
import { type Summary, summarize } from '@swarmbee/optimize';
import { type BenchCheck, check } from '../report/report.js';
import { barChart, lineChart } from '../report/svg.js';
import { resultHeader, type Suite, type SuiteContext } from '../suite.js';

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
  const json = await postJson<{
    usage: { completion_tokens: number };
    timings: { tokens_per_s: number };
  }>({ url: apiUrl }, '/v1/completions', {
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    ignore_eos: true,
  });
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

interface Figures {
  inProcess: number[];
  /** Single-stream decode tok/s by stage count, one sample per round. */
  single: Map<number, number[]>;
  /** Concurrent runs by stage count and stream count (`2x8`), one per round. */
  aggregate: Map<string, ConcurrentRun[]>;
  bytesPerTokenPerHop?: number;
}

interface ConcurrentRun {
  /** Aggregate completion tokens per second. */
  rate: number;
  /** Share of the run each stage spent in forward passes (mean over stages). */
  busyShare: number;
  /** Mean forward pass, ms (mean over stages). */
  forwardMs: number;
}

/** `streams` concurrent completions; how fast, and how busy the stages were meanwhile. */
async function concurrentRun(
  cluster: LocalCluster,
  streams: number,
  tokens: number,
  vocab: number,
): Promise<ConcurrentRun> {
  const before = await cluster.coordinator.workerStats();
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: streams }, (_, s) =>
      complete(cluster.apiUrl, promptIds(s + 1, vocab), tokens),
    ),
  );
  const wallMs = performance.now() - started;
  const after = await cluster.coordinator.workerStats();
  const stages = Object.keys(after);
  const delta = (name: string, key: string) =>
    (after[name]?.[key] ?? 0) - (before[name]?.[key] ?? 0);
  const mean = (f: (name: string) => number) =>
    stages.reduce((n, name) => n + f(name), 0) / stages.length;
  return {
    rate: (results.reduce((n, x) => n + x.completionTokens, 0) * 1000) / wallMs,
    busyShare: mean((name) => delta(name, 'forwardMsTotal') / wallMs),
    forwardMs: mean((name) => delta(name, 'forwardMsTotal') / Math.max(1, delta(name, 'forwards'))),
  };
}

/**
 * Both clusters stay up and every round measures each setup once, in turn, so a
 * ratio compares runs minutes apart at most: this machine's speed drifts.
 */
async function measure(
  context: SuiteContext,
  model: ModelDir,
  tokens: number,
  rounds: number,
  streams: number[],
): Promise<Figures> {
  const clusters = new Map<number, LocalCluster>();
  const vocab = model.manifest.config.vocabSize;
  try {
    for (const stages of [1, 2]) {
      context.progress(`pipeline: starting ${stages} worker(s), each pinned to its own core`);
      const cluster = await LocalCluster.start({
        model,
        workers: stages,
        cliBin: context.cliBin,
        cacheDir: join(cacheRoot(), 'bench', `stages-${stages}`),
        threads: 1,
        pinCores: true,
        workerOutput: 'ignore',
      });
      clusters.set(stages, cluster);
      await complete(cluster.apiUrl, promptIds(0, vocab), 16); // warm-up, excluded
    }
    await inProcessRun(context, model, 16); // warm-up, excluded
    const figures: Figures = {
      inProcess: [],
      single: new Map([
        [1, []],
        [2, []],
      ]),
      aggregate: new Map(),
    };
    const two = clusters.get(2)!;
    const first = two.coordinator.deployment[0]!.worker;
    let stage0Bytes = 0;
    let stage0Tokens = 0;
    for (let round = 0; round < rounds; round++) {
      context.progress(
        `pipeline: round ${round + 1}/${rounds}: one stream in process, on 1 stage, on 2 stages`,
      );
      figures.inProcess.push(await inProcessRun(context, model, tokens));
      for (const [stages, cluster] of clusters) {
        const before = stages === 2 ? await cluster.coordinator.workerStats() : undefined;
        const result = await complete(cluster.apiUrl, promptIds(0, vocab), tokens);
        figures.single.get(stages)!.push(result.tokensPerSecond);
        if (before) {
          const after = await cluster.coordinator.workerStats();
          stage0Bytes += (after[first]?.bytesSent ?? 0) - (before[first]?.bytesSent ?? 0);
          // Stage 0 forwarded the prompt and every sampled token but the last.
          stage0Tokens += PROMPT_TOKENS + result.completionTokens - 1;
        }
      }
      for (const count of streams) {
        context.progress(
          `pipeline: round ${round + 1}/${rounds}: ${count} concurrent streams on 1 and on 2 stages`,
        );
        for (const [stages, cluster] of clusters) {
          const key = `${stages}x${count}`;
          if (!figures.aggregate.has(key)) figures.aggregate.set(key, []);
          figures.aggregate.get(key)!.push(await concurrentRun(cluster, count, tokens, vocab));
        }
      }
    }
    figures.bytesPerTokenPerHop = stage0Bytes / stage0Tokens;
    return figures;
  } finally {
    await Promise.all([...clusters.values()].map((c) => c.stop()));
  }
}

/** Per-round ratios a[i] / b[i], summarised: the baseline is always the same round's. */
function ratios(a: number[], b: number[]): Summary {
  return summarize(a.map((value, i) => value / b[i]!));
}

export const pipelineSuite: Suite = {
  name: 'pipeline',
  describe:
    '110M preset over pinned single-thread worker processes: loopback cost, hop latency, pipelined throughput, bytes per hop',
  async run(context) {
    const started = Date.now();
    const rounds = context.quick ? 1 : 5;
    const tokens = context.quick ? 32 : 96;
    const streams = context.quick ? [4] : [4, 8, 16];
    context.progress(
      `pipeline: preparing the ${BENCH_PRESET} synthetic model (cached after the first run)`,
    );
    const model = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    const figures = await measure(context, model, tokens, rounds, streams);
    const baseline = summarize(figures.inProcess);
    const single = (stages: number) => summarize(figures.single.get(stages)!);
    const aggregate = (stages: number, count: number) =>
      figures.aggregate.get(`${stages}x${count}`)!.map((run) => run.rate);
    const stageUse = (stages: number, count: number, pick: (run: ConcurrentRun) => number) =>
      summarize(figures.aggregate.get(`${stages}x${count}`)!.map(pick)).median;
    const dim = model.manifest.config.dim;
    const checkStreams = streams.at(-1)!;
    const loopback = ratios(figures.single.get(1)!, figures.inProcess);
    const hopCost = ratios(figures.single.get(1)!, figures.single.get(2)!);
    const scaling = new Map(
      streams.map((count) => [count, ratios(aggregate(2, count), aggregate(1, count))]),
    );
    const checks: BenchCheck[] = [
      check(
        '1 stage over loopback vs in-process engine',
        loopback.median,
        0.9,
        'decode tok/s, 1 worker / in-process, batch 1 (median of per-round ratios)',
      ),
      check(
        '2 stages: per-token latency vs 1 stage',
        hopCost.median,
        1.1,
        'ms/token with 2 stages / with 1 (median of per-round ratios)',
        '<=',
      ),
      check(
        `2 stages vs 1 with ${checkStreams} streams`,
        scaling.get(checkStreams)!.median,
        1.7,
        'aggregate decode tok/s, 2 stages / 1 stage (median of per-round ratios)',
      ),
      check(
        'bytes per token per hop',
        figures.bytesPerTokenPerHop ?? 0,
        dim * 4 + 512,
        `stage 0 bytes sent / tokens it forwarded (limit: hidden ${dim} x 4 + 512)`,
        '<=',
      ),
    ];
    const fmt = (v: number) => v.toFixed(1);
    const spread = (x: Summary) => `${fmt(x.min)}..${fmt(x.max)}`;
    const rows: (string | number)[][] = [
      [
        'in-process engine',
        fmt(baseline.median),
        spread(baseline),
        (1000 / baseline.median).toFixed(2),
        '-',
      ],
      ...[1, 2].map((stages) => [
        `${stages} worker process(es)`,
        fmt(single(stages).median),
        spread(single(stages)),
        (1000 / single(stages).median).toFixed(2),
        stages === 2 ? (figures.bytesPerTokenPerHop ?? 0).toFixed(0) : '-',
      ]),
    ];
    const throughputRows = streams.map((count) => {
      const one = summarize(aggregate(1, count));
      const two = summarize(aggregate(2, count));
      const ratio = scaling.get(count)!;
      const use = (stages: number) =>
        `${(stageUse(stages, count, (r) => r.busyShare) * 100).toFixed(0)}% busy, ${stageUse(stages, count, (r) => r.forwardMs).toFixed(1)} ms/forward`;
      return [
        count,
        fmt(one.median),
        fmt(two.median),
        `${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}..${ratio.max.toFixed(2)})`,
        use(1),
        use(2),
      ];
    });
    return {
      suite: 'pipeline',
      title: 'Pipeline: worker processes on loopback, one core and one thread each',
      ...resultHeader(context, started, model, `synthetic preset ${BENCH_PRESET}`),
      options: { rounds, tokens, streams, promptTokens: PROMPT_TOKENS },
      notes: [
        `Each stream: a ${PROMPT_TOKENS}-token prompt, then ${tokens} greedy tokens. Both clusters stay up and each of ${rounds} round(s) measures every setup once, in turn; ratios are taken within a round and summarised by their median (spread min..max). One warm-up request per setup is excluded.`,
        'Workers are pinned with taskset (worker i on core i) and run one onnxruntime thread; the coordinator runs unpinned in the benchmark process.',
        'Single-stream tok/s excludes the first token (as run.c reports); aggregate tok/s is all completion tokens over the wall time of the concurrent run.',
        'A decode step streams every weight of a stage once, whatever the micro-batch size, while both cores share one memory bus: two micro-batches of n/2 cost the engines close to two batches of n. The engine columns show it (forward time and busy share), and bound what pipelining can gain on one machine.',
        'For reference (not measured here): llama.cpp RPC with two single-thread servers decodes this shape at about 43 tok/s for one stream; one llama.cpp process about 70 with 2 threads.',
      ],
      metrics: {
        inProcessTokensPerSecond: { unit: 'tok/s', summary: baseline, samples: figures.inProcess },
        oneStageTokensPerSecond: {
          unit: 'tok/s',
          summary: single(1),
          samples: figures.single.get(1)!,
        },
        twoStageTokensPerSecond: {
          unit: 'tok/s',
          summary: single(2),
          samples: figures.single.get(2)!,
        },
        ...Object.fromEntries(
          [...figures.aggregate].map(([key, runs]) => [
            `aggregate.${key}`,
            {
              unit: 'tok/s',
              summary: summarize(runs.map((r) => r.rate)),
              samples: runs.map((r) => r.rate),
            },
          ]),
        ),
      },
      tables: [
        {
          title: 'One stream',
          head: ['setup', 'tok/s', 'spread', 'ms/token', 'bytes/token/hop'],
          rows,
        },
        {
          title: 'Concurrent streams (aggregate decode tok/s)',
          head: [
            'streams',
            '1 stage',
            '2 stages',
            'ratio (spread)',
            '1 stage: engine',
            '2 stages: each engine',
          ],
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
              ...[1, 2].map((stages) => ({
                label: `${stages} stage(s)`,
                value: single(stages).median,
                low: single(stages).min,
                high: single(stages).max,
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
            series: [1, 2].map((stages) => ({
              name: `${stages} stage(s)`,
              points: [
                [1, single(stages).median] as [number, number],
                ...streams.map(
                  (c) => [c, summarize(aggregate(stages, c)).median] as [number, number],
                ),
              ],
            })),
          }),
        },
      ],
    };
  },
};
