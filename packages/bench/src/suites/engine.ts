/**
 * `npm run bench -- engine`: one process, batch 1, the 110M synthetic preset.
 * Decode speed at short and long context, the memory roofline, peak RSS, and
 * how long the event loop stalls while a forward pass runs.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createStageEngine, LocalPipeline, type Pipeline } from '@swarmbee/engine';
import {
  BENCH_PRESET,
  buildShard,
  cachedSynthModel,
  DEFAULT_SYNTH_SEED,
  type ModelDir,
  requireLlamaDir,
} from '@swarmbee/model';
import { type Summary, summarize, timeDecode } from '@swarmbee/optimize';
import { findLlamaBench } from '../gguf/llama-bench.js';
import { findGgufFiles, type GgufFiles, llamaCppGgufFiles } from '../gguf/llama-cpp-files.js';
import { measureCopyBandwidth } from '../memory-bandwidth.js';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { resultHeader, type Suite, type SuiteContext } from '../suite.js';
import { measureAgainstPeer, type PeerPrecision, summarizeCell } from './engine-peer.js';
import { peerPart } from './engine-peer-report.js';
import { cachedQuantized } from './optimize-speed.js';

export const SHORT_CONTEXT_TOKENS = 16;
export const LONG_CONTEXT_TOKENS = 256;
/** Prompt of the prefill measured against llama.cpp. */
export const PEER_PREFILL_TOKENS = 64;

interface DecodeRun {
  threads: number;
  context: number;
  stepMs: Summary;
  samples: number[];
  loopDelayMs: Summary;
}

/** Short and long context measured in alternating rounds, so drifting load hits both. */
interface DecodeRounds {
  runs: DecodeRun[];
  /** Per round: median step time at short context / at long context (tok/s long / short). */
  longOverShort: number[];
}

async function decodeRuns(
  dir: ModelDir,
  threads: number,
  rounds: number,
  stepsPerRound: number,
  context: SuiteContext,
): Promise<DecodeRounds> {
  const pipeline = await LocalPipeline.create(dir, {
    stages: 1,
    stage: { intraOpThreads: threads },
  });
  const vocab = dir.manifest.config.vocabSize;
  const contexts = [SHORT_CONTEXT_TOKENS, LONG_CONTEXT_TOKENS];
  const samples = new Map<number, number[]>(contexts.map((c) => [c, []]));
  const longOverShort: number[] = [];
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  try {
    await timeDecode(pipeline, SHORT_CONTEXT_TOKENS, 8, vocab); // warm-up, excluded
    for (let round = 1; round <= rounds; round++) {
      context.progress(
        `engine: ${threads} thread(s), round ${round}/${rounds}: ${stepsPerRound} decode steps at context ${contexts.join(' and ')}`,
      );
      const medians: number[] = [];
      for (const ctx of contexts) {
        // The event-loop monitor covers the short-context decode, the one the stall test repeats.
        if (ctx === SHORT_CONTEXT_TOKENS) monitor.enable();
        const stepMs = await timeDecode(pipeline, ctx, stepsPerRound, vocab);
        monitor.disable();
        samples.get(ctx)!.push(...stepMs);
        medians.push(summarize(stepMs).median);
      }
      longOverShort.push(medians[0]! / medians[1]!);
    }
    const runs = contexts.map((ctx) => ({
      threads,
      context: ctx,
      samples: samples.get(ctx)!,
      stepMs: summarize(samples.get(ctx)!),
      loopDelayMs: ctx === SHORT_CONTEXT_TOKENS ? loopDelay(monitor) : summarize([]),
    }));
    return { runs, longOverShort };
  } finally {
    await pipeline.close();
  }
}

function loopDelay(histogram: ReturnType<typeof monitorEventLoopDelay>): Summary {
  const ms = (ns: number) => ns / 1e6;
  return {
    n: histogram.count,
    median: ms(histogram.percentile(50)),
    mean: ms(histogram.mean),
    min: ms(histogram.min),
    max: ms(histogram.max),
    p5: ms(histogram.percentile(5)),
    p95: ms(histogram.percentile(95)),
    p99: ms(histogram.percentile(99)),
  };
}

/** The same decode on the event loop's own thread: how long it would stall. */
async function mainThreadStall(dir: ModelDir, steps: number): Promise<Summary> {
  const stage = await createStageEngine(
    buildShard(dir, { start: 0, end: dir.manifest.config.nLayers }),
    { intraOpThreads: 2 },
  );
  const pipeline: Pipeline = {
    info: {
      vocabSize: dir.manifest.config.vocabSize,
      maxSeqLen: dir.manifest.config.maxSeqLen,
      stages: [],
    },
    step: async (s) => {
      const out = await stage.forward({ rows: s.rows, tokens: s.tokens });
      if (out.kind !== 'tokens') throw new Error('expected tokens');
      return { tokens: out.tokens };
    },
    release: (ids) => stage.release(ids),
    close: () => stage.close(),
  };
  try {
    await timeDecode(pipeline, SHORT_CONTEXT_TOKENS, 4, dir.manifest.config.vocabSize);
    const monitor = monitorEventLoopDelay({ resolution: 1 });
    monitor.enable();
    await timeDecode(pipeline, SHORT_CONTEXT_TOKENS, steps, dir.manifest.config.vocabSize);
    monitor.disable();
    return loopDelay(monitor);
  } finally {
    await stage.close();
  }
}

export const engineSuite: Suite = {
  name: 'engine',
  describe:
    'decode tokens/s at context 16 and 256, memory roofline, peak RSS, event-loop stalls; fp32/int8/int4 decode (step taken apart) and prefill at 1 and 2 threads against llama.cpp when installed (110M preset, batch 1)',
  async run(context) {
    const started = Date.now();
    const rounds = context.quick ? 1 : 4;
    const stepsPerRound = context.quick ? 16 : 32;
    context.progress(
      `engine: preparing the ${BENCH_PRESET} synthetic model (cached after the first run)`,
    );
    const dir = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    const weightBytes = dir.manifest.weights.bytes;
    const byThreads = [
      await decodeRuns(dir, 1, rounds, stepsPerRound, context),
      await decodeRuns(dir, 2, rounds, stepsPerRound, context),
    ];
    const runs = byThreads.flatMap((t) => t.runs);
    const stall = await mainThreadStall(dir, 16);
    // Before the other precisions load: the fp32 model's own footprint.
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const llamaBench = await findLlamaBench(context.llamaCppDir ?? process.env.SWARMBEE_LLAMA_CPP);
    const base = requireLlamaDir(dir, 'the engine suite');
    let files: GgufFiles | undefined;
    if (llamaBench)
      files = context.ggufDir
        ? await findGgufFiles(context.ggufDir)
        : await llamaCppGgufFiles(base, llamaBench, context.progress);
    context.progress('engine: preparing the int8 and int4 models (cached after the first run)');
    const precisions: PeerPrecision[] = [
      { label: 'fp32', quant: 'f32', dir },
      { label: 'int8', quant: 'q8_0', dir: await cachedQuantized(base, 8, 'int8') },
      { label: 'int4', quant: 'q4_0', dir: await cachedQuantized(base, 4, 'int8') },
    ];
    const peerOptions = {
      threads: [1, 2],
      rounds: context.quick ? 1 : 3,
      decodeSteps: stepsPerRound,
      decodeContext: SHORT_CONTEXT_TOKENS,
      prefillTokens: PEER_PREFILL_TOKENS,
      ...(llamaBench ? { llamaBench } : {}),
      ...(files ? { files } : {}),
      progress: context.progress,
    };
    const cells = await measureAgainstPeer(precisions, peerOptions);
    context.progress('engine: measuring memory bandwidth (a 256 MiB copy)');
    const bandwidth = measureCopyBandwidth();
    const peer = peerPart(
      cells,
      cells.map((c) => summarizeCell(c, PEER_PREFILL_TOKENS)),
      { ...peerOptions, bandwidth },
    );

    const tokensPerSecond = (run: DecodeRun) => 1000 / run.stepMs.median;
    const find = (threads: number, ctx: number) =>
      runs.find((r) => r.threads === threads && r.context === ctx)!;
    const best = runs
      .filter((r) => r.context === SHORT_CONTEXT_TOKENS)
      .reduce((a, b) => (tokensPerSecond(a) >= tokensPerSecond(b) ? a : b));
    const checks: BenchCheck[] = [];
    for (const [i, threads] of [1, 2].entries()) {
      const ratios = summarize(byThreads[i]!.longOverShort);
      checks.push(
        check(
          `${threads} thread(s): long-context decode keeps its speed`,
          ratios.median,
          0.8,
          `tok/s at context ${LONG_CONTEXT_TOKENS} / tok/s at context ${SHORT_CONTEXT_TOKENS} (median of per-round ratios, spread ${ratios.min.toFixed(2)}..${ratios.max.toFixed(2)})`,
        ),
      );
    }
    checks.push(
      check(
        'memory roofline',
        (tokensPerSecond(best) * weightBytes) / bandwidth,
        0.6,
        `best decode tok/s (${best.threads} threads) x weight bytes / copy bandwidth`,
      ),
    );
    checks.push(
      check(
        'event loop stays free during run()',
        find(2, SHORT_CONTEXT_TOKENS).loopDelayMs.p99 / stall.p99,
        0.2,
        'p99 event-loop delay, threaded / same decode on the main thread',
        '<=',
      ),
    );

    const metrics: BenchResult['metrics'] = {
      copyBandwidthBytesPerSecond: { unit: 'B/s', summary: summarize([bandwidth]) },
      peakRssBytes: { unit: 'B', summary: summarize([peakRssBytes]) },
      mainThreadLoopDelayMs: { unit: 'ms', summary: stall },
    };
    for (const run of runs) {
      metrics[`decodeStepMs.threads${run.threads}.ctx${run.context}`] = {
        unit: 'ms',
        summary: run.stepMs,
        samples: run.samples,
      };
      if (run.loopDelayMs.n > 0) {
        metrics[`loopDelayMs.threads${run.threads}.ctx${run.context}`] = {
          unit: 'ms',
          summary: run.loopDelayMs,
        };
      }
    }
    const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
    return {
      suite: 'engine',
      title: 'Engine: one stage in process, batch 1',
      ...resultHeader(context, started, dir, `synthetic preset ${BENCH_PRESET}`),
      options: {
        rounds,
        stepsPerRound,
        quick: context.quick,
        contexts: [SHORT_CONTEXT_TOKENS, LONG_CONTEXT_TOKENS],
        peerRounds: peerOptions.rounds,
        prefillTokens: PEER_PREFILL_TOKENS,
        llamaCpp: llamaBench ?? null,
        ggufFiles: files ?? null,
      },
      notes: [
        `Each figure is the median of ${rounds * stepsPerRound} decode steps after a prefill of the stated context: ${rounds} round(s) of ${stepsPerRound} steps, short and long context alternating so that load elsewhere on the machine hits both. An 8-step warm-up per session is excluded. Spread is p5..p95.`,
        'The event-loop delay is taken over the short-context decode steps.',
        'The engine runs in a worker thread (ThreadedStage), so each step includes the thread hand-off.',
        'Memory bandwidth: best of 7 copies of 256 MiB, counting bytes read plus written (STREAM copy).',
        'Peak RSS is taken before the int8 and int4 models load for the comparison below.',
        ...peer.notes,
      ],
      metrics: { ...metrics, ...peer.metrics },
      tables: [
        {
          title: 'Decode',
          head: ['threads', 'context', 'tok/s', 'ms/token (p5..p95)', 'event-loop delay p99 (ms)'],
          rows: runs.map((r) => [
            r.threads,
            r.context,
            fmt(tokensPerSecond(r)),
            `${fmt(r.stepMs.median, 2)} (${fmt(r.stepMs.p5, 2)}..${fmt(r.stepMs.p95, 2)})`,
            fmt(r.loopDelayMs.p99, 2),
          ]),
        },
        {
          title: 'Memory',
          head: ['figure', 'value'],
          rows: [
            ['weight bytes', `${fmt(weightBytes / 2 ** 20)} MiB`],
            [
              'peak RSS',
              `${fmt(peakRssBytes / 2 ** 20)} MiB (${fmt(peakRssBytes / weightBytes, 2)} x weights)`,
            ],
            ['copy bandwidth', `${fmt(bandwidth / 1e9, 2)} GB/s`],
            [
              'weights streamed at best decode',
              `${fmt((tokensPerSecond(best) * weightBytes) / 1e9, 2)} GB/s`,
            ],
            ['event-loop delay p99, decode on the main thread', `${fmt(stall.p99, 2)} ms`],
          ],
        },
        ...peer.tables,
      ],
      checks: [...checks, ...peer.checks],
      charts: [
        ...peer.charts,
        {
          file: 'decode-tokens-per-second.svg',
          title: 'Decode tokens/s',
          svg: barChart({
            title: `Decode tokens/s, ${dir.manifest.name}, batch 1`,
            unit: 'tokens/s',
            bars: runs.map((r) => ({
              label: `${r.threads}T ctx ${r.context}`,
              value: tokensPerSecond(r),
              low: 1000 / r.stepMs.p95,
              high: 1000 / r.stepMs.p5,
            })),
          }),
        },
      ],
    };
  },
};
