/**
 * `npm run bench -- soak`: many requests of mixed lengths, a fixed number in
 * flight, over three worker processes on loopback. Every request must come back
 * whole, and no worker may keep growing: its resident memory after the run is
 * held against its resident memory after a warm-up of the same mix.
 */
import { join } from 'node:path';
import { LocalCluster } from '@swarmbee/local-cluster';
import { cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED, type ModelDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { timedCompletion } from '../cluster-bench/client.js';
import { promptIds } from '../cluster-bench/scenario.js';
import { type BenchCheck, check } from '../report/report.js';
import { lineChart } from '../report/svg.js';
import { resultHeader, type Suite, type SuiteContext } from '../suite.js';

const WORKERS = 3;
const CONCURRENCY = 8;
/** Resident memory after the run / after warm-up, per worker, at most. */
export const RSS_GROWTH_LIMIT = 1.1;
/** Requests between two memory samples. */
export const SAMPLE_EVERY = 5;
/**
 * Memory is compared as each worker's median over the samples of the last this
 * many requests of warm-up and of the run: RSS saws between major collections.
 */
export const WINDOW_REQUESTS = 50;

export interface SoakShape {
  preset: 'tiny' | 'small';
  requests: number;
  warmup: number;
  promptTokens: [number, number];
  outputTokens: [number, number];
}

export const SOAK_FULL: SoakShape = {
  preset: 'small',
  requests: 300,
  warmup: 100,
  promptTokens: [1, 64],
  outputTokens: [8, 128],
};
export const SOAK_QUICK: SoakShape = {
  preset: 'tiny',
  requests: 60,
  warmup: 30,
  promptTokens: [1, 24],
  outputTokens: [4, 32],
};

export interface SoakRequest {
  prompt: number[];
  maxTokens: number;
}

/** A seeded mix of prompt and output lengths, uniform over each range. */
export function requestMix(
  count: number,
  shape: SoakShape,
  vocab: number,
  salt: number,
): SoakRequest[] {
  let state = (0x9e3779b9 ^ salt) >>> 0;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const within = ([low, high]: [number, number]) => low + Math.floor(next() * (high - low + 1));
  return Array.from({ length: count }, (_, i) => ({
    prompt: promptIds(within(shape.promptTokens), salt * 100_003 + i, vocab),
    maxTokens: within(shape.outputTokens),
  }));
}

interface Outcome {
  completed: number;
  /** Requests that failed or came back short, with why. */
  failures: string[];
  tokens: number;
  e2eMs: number[];
  ttftMs: number[];
  wallMs: number;
}

/** Runs the requests with `CONCURRENCY` in flight; `onDone` sees each completion count. */
async function drive(
  cluster: LocalCluster,
  requests: readonly SoakRequest[],
  onDone: (done: number) => void = () => {},
): Promise<Outcome> {
  const outcome: Outcome = {
    completed: 0,
    failures: [],
    tokens: 0,
    e2eMs: [],
    ttftMs: [],
    wallMs: 0,
  };
  const started = performance.now();
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < requests.length) {
      const request = requests[next++]!;
      try {
        const run = await timedCompletion(
          { url: cluster.apiUrl },
          request.prompt,
          request.maxTokens,
        );
        outcome.tokens += run.tokenMs.length;
        if (run.tokenMs.length === request.maxTokens) {
          outcome.completed++;
          outcome.e2eMs.push(run.e2eMs);
          outcome.ttftMs.push(run.ttftMs);
        } else {
          outcome.failures.push(`${run.tokenMs.length} of ${request.maxTokens} tokens`);
        }
      } catch (error) {
        outcome.failures.push(error instanceof Error ? error.message : String(error));
      }
      onDone(++done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  outcome.wallMs = performance.now() - started;
  return outcome;
}

interface MemorySample {
  /** Requests completed, counted from the end of warm-up (negative during it). */
  done: number;
  rss: Map<string, number>;
}

/** Each worker's resident memory now, bytes, by worker name. */
async function residentBytes(cluster: LocalCluster): Promise<Map<string, number>> {
  const stats = await cluster.coordinator.workerStats();
  return new Map(Object.entries(stats).map(([name, s]) => [name, s.rssBytes ?? 0]));
}

/** Each worker's median resident bytes over the samples taken in the `WINDOW_REQUESTS` up to `end`. */
function windowMedian(samples: readonly MemorySample[], end: number): Map<string, number> {
  const window = samples.filter((s) => s.done > end - WINDOW_REQUESTS && s.done <= end);
  const names = new Set(window.flatMap((s) => [...s.rss.keys()]));
  return new Map(
    [...names].map((name) => [
      name,
      summarize(window.flatMap((s) => s.rss.get(name) ?? [])).median,
    ]),
  );
}

async function soak(context: SuiteContext, model: ModelDir, shape: SoakShape) {
  const vocab = model.manifest.config.vocabSize;
  context.progress(`soak: starting ${WORKERS} workers`);
  const cluster = await LocalCluster.start({
    model,
    workers: WORKERS,
    cliBin: context.cliBin,
    cacheDir: join(cacheRoot(), 'bench', 'soak'),
    threads: 1,
    workerOutput: 'ignore',
    coordinator: { planning: { planner: 'even' } },
  });
  try {
    const samples: MemorySample[] = [];
    const pending: Promise<void>[] = [];
    const sampleEvery = (phase: string, total: number, offset: number) => (done: number) => {
      if (done % 25 === 0) context.progress(`soak: ${phase} ${done}/${total} requests done`);
      if (done % SAMPLE_EVERY !== 0 && done !== total) return;
      pending.push(
        residentBytes(cluster).then((rss) => void samples.push({ done: done + offset, rss })),
      );
    };
    const warmupMix = requestMix(shape.warmup, shape, vocab, 1);
    const warmup = await drive(
      cluster,
      warmupMix,
      sampleEvery('warm-up:', shape.warmup, -shape.warmup),
    );
    if (warmup.failures.length > 0)
      throw new Error(`soak warm-up failed: ${warmup.failures.slice(0, 3).join('; ')}`);
    const runMix = requestMix(shape.requests, shape, vocab, 2);
    const outcome = await drive(cluster, runMix, sampleEvery('run:', shape.requests, 0));
    await Promise.all(pending);
    samples.sort((a, b) => a.done - b.done);
    const stages = cluster.coordinator.deployment.map(
      (s) => `${s.worker}[${s.layerStart},${s.layerEnd})`,
    );
    return {
      outcome,
      afterWarmup: windowMedian(samples, 0),
      afterRun: windowMedian(samples, shape.requests),
      samples,
      stages,
    };
  } finally {
    await cluster.stop();
  }
}

const MIB = 2 ** 20;

export const soakSuite: Suite = {
  name: 'soak',
  describe: `${SOAK_FULL.requests} requests of mixed lengths, ${CONCURRENCY} in flight, over ${WORKERS} workers: all complete, worker memory flat`,
  async run(context) {
    const started = Date.now();
    const shape = context.quick ? SOAK_QUICK : SOAK_FULL;
    context.progress(`soak: preparing the ${shape.preset} synthetic model`);
    const model = await cachedSynthModel(shape.preset, DEFAULT_SYNTH_SEED);
    const { outcome, afterWarmup, afterRun, samples, stages } = await soak(context, model, shape);
    const workers = [...afterWarmup.keys()].sort();
    const growth = workers.map((name) => afterRun.get(name)! / afterWarmup.get(name)!);
    const e2e = summarize(outcome.e2eMs);
    const ttft = summarize(outcome.ttftMs);
    const checks: BenchCheck[] = [
      check(
        'requests completed whole',
        outcome.completed / shape.requests,
        1,
        `completions with every requested token / ${shape.requests} requests`,
      ),
      check(
        'worker memory after the run vs after warm-up (worst worker)',
        Math.max(...growth),
        RSS_GROWTH_LIMIT,
        `median RSS over the run's last ${WINDOW_REQUESTS} requests / over warm-up's last ${WINDOW_REQUESTS}, per worker`,
        '<=',
      ),
    ];
    const fmt = (v: number, digits = 1) => v.toFixed(digits);
    const inRun = samples.filter((s) => s.done > 0);
    return {
      suite: 'soak',
      title: `Soak: ${shape.requests} mixed requests, ${CONCURRENCY} in flight, ${WORKERS} workers`,
      ...resultHeader(context, started, model, `synthetic preset ${shape.preset}`),
      options: { ...shape, workers: WORKERS, concurrency: CONCURRENCY, stages },
      notes: [
        `Prompts of ${shape.promptTokens.join('..')} tokens and ${shape.outputTokens.join('..')} greedy output tokens, drawn uniformly from a fixed seed; ${CONCURRENCY} requests in flight at all times, streamed over the HTTP API.`,
        `Warm-up: ${shape.warmup} requests of the same mix (different prompts), excluded from the figures; memory is sampled from each worker's own report (process RSS) every ${SAMPLE_EVERY} requests and compared as the median over the last ${WINDOW_REQUESTS} requests of warm-up and of the run. The warm-up is long because memory settles over a worker's first couple of hundred requests: onnxruntime's arena grows to the largest shapes seen, and V8 frees the buffers of finished frames only at its next major collection (tens of MiB on this model), so RSS saws within a band rather than sitting still, and one sample alone says little.`,
        outcome.failures.length > 0
          ? `Failures: ${outcome.failures.slice(0, 5).join('; ')}`
          : 'No request failed or came back short.',
      ],
      metrics: {
        e2eMs: { unit: 'ms', summary: e2e },
        ttftMs: { unit: 'ms', summary: ttft },
        tokensPerS: {
          unit: 'tok/s',
          summary: summarize([(outcome.tokens * 1000) / outcome.wallMs]),
        },
        ...Object.fromEntries(
          workers.flatMap((name, i) => {
            const mib = samples.map((s) => (s.rss.get(name) ?? 0) / MIB);
            return [
              [`rssGrowth.${name}`, { unit: 'ratio', summary: summarize([growth[i]!]) }],
              [`rssMiB.${name}`, { unit: 'MiB', summary: summarize(mib), samples: mib }],
            ];
          }),
        ),
      },
      tables: [
        {
          title: 'Requests',
          head: [
            'requests',
            'completed',
            'tokens',
            'tok/s',
            'e2e p50 ms',
            'e2e p99 ms',
            'ttft p50 ms',
          ],
          rows: [
            [
              shape.requests,
              outcome.completed,
              outcome.tokens,
              fmt((outcome.tokens * 1000) / outcome.wallMs),
              fmt(e2e.median),
              fmt(e2e.p99),
              fmt(ttft.median),
            ],
          ],
        },
        {
          title: 'Worker memory (RSS)',
          head: ['worker', 'end of warm-up MiB', 'peak in run MiB', 'end of run MiB', 'ratio'],
          rows: workers.map((name, i) => [
            name,
            fmt(afterWarmup.get(name)! / MIB),
            fmt(Math.max(...inRun.map((s) => s.rss.get(name) ?? 0)) / MIB),
            fmt(afterRun.get(name)! / MIB),
            fmt(growth[i]!, 3),
          ]),
        },
      ],
      checks,
      charts: [
        {
          file: 'soak-rss.svg',
          title: 'Worker memory over the run',
          svg: lineChart({
            title: 'Worker RSS (MiB) against requests completed',
            xLabel: 'requests completed (negative: warm-up)',
            yLabel: 'MiB',
            series: workers.map((name) => ({
              name,
              points: samples.map((s) => [s.done, (s.rss.get(name) ?? 0) / MIB]),
            })),
          }),
        },
      ],
    };
  },
};
