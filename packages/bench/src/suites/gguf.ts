/**
 * `npm run bench -- gguf`: the same model as GGUF files at F32, Q8_0 and Q4_0 — how long
 * SwarmBee takes to import each and how much memory that takes, then decode and prefill
 * tokens/s of each (one stage, batch 1, 2 threads) against the memory roofline; and, when
 * llama.cpp is at hand, llama-bench on the same files in the same rounds, as ratios.
 *
 * The files: `--gguf-dir DIR` (or $SWARMBEE_GGUF_BENCH_DIR) holding `*-f32.gguf`,
 * `*-q8_0.gguf` and `*-q4_0.gguf` (docs/BENCHMARKS.md says how the 110M ones are made);
 * without one, the small synthq files of ../shared/models/gguf.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LocalPipeline, type Pipeline } from '@swarmbee/engine';
import { type ModelDir, openModelDir } from '@swarmbee/model';
import { summarize, timeDecode } from '@swarmbee/optimize';
import { findLlamaBench, type LlamaBenchFigure, runLlamaBench } from '../gguf/llama-bench.js';
import { findGgufFiles, GGUF_QUANTS } from '../gguf/llama-cpp-files.js';
import { measureCopyBandwidth } from '../memory-bandwidth.js';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { resultHeader, type Suite } from '../suite.js';

const run = promisify(execFile);
const QUANTS = GGUF_QUANTS;
const THREADS = 2;
const PREFILL_TOKENS = 128;
const DECODE_CONTEXT_TOKENS = 16;

interface Imported {
  quant: (typeof QUANTS)[number];
  file: string;
  fileBytes: number;
  dir: ModelDir;
  importMs: number;
  importPeakRssBytes: number;
}

/**
 * Imports in a child process of its own, so its time and peak RSS are the import's alone.
 * The child resolves @swarmbee/model as this process does (same flags, from the CLI's dir).
 */
async function importInChild(
  cliBin: string,
  file: string,
  out: string,
): Promise<{ ms: number; peakRssBytes: number }> {
  const script = `
    import { importGguf } from '@swarmbee/model';
    const started = performance.now();
    await importGguf({ file: ${JSON.stringify(file)}, out: ${JSON.stringify(out)} });
    process.stdout.write(JSON.stringify({ ms: performance.now() - started, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
  `;
  const { stdout } = await run(
    process.execPath,
    [...process.execArgv, '--input-type=module', '-e', script],
    {
      cwd: dirname(resolve(cliBin)),
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(stdout) as { ms: number; peakRssBytes: number };
}

async function timePrefill(pipeline: Pipeline, tokens: number, vocab: number): Promise<number> {
  const seqId = `prefill-${Math.random().toString(36).slice(2)}`;
  const ids = BigInt64Array.from({ length: tokens }, (_, i) =>
    BigInt(1 + ((i * 7919) % (vocab - 1))),
  );
  const start = performance.now();
  await pipeline.step({
    rows: [{ seqId, start: 0, count: tokens, sampling: { temperature: 0, topK: 0, topP: 1 } }],
    tokens: ids,
  });
  const ms = performance.now() - start;
  await pipeline.release([seqId]);
  return ms;
}

export const ggufSuite: Suite = {
  name: 'gguf',
  describe:
    'GGUF at F32, Q8_0 and Q4_0: import time and peak RSS, decode and prefill tok/s, memory roofline; llama-bench on the same files as ratios when llama.cpp is at hand',
  async run(context) {
    const started = Date.now();
    const rounds = context.quick ? 1 : 3;
    const decodeSteps = context.quick ? 8 : 32;
    const ggufDir =
      context.ggufDir ??
      process.env.SWARMBEE_GGUF_BENCH_DIR ??
      resolve(dirname(resolve(context.cliBin)), '..', '..', '..', '..', 'shared', 'models', 'gguf');
    const files = await findGgufFiles(ggufDir);
    const llamaBench = await findLlamaBench(context.llamaCppDir ?? process.env.SWARMBEE_LLAMA_CPP);
    const work = await mkdtemp(join(tmpdir(), 'swarmbee-gguf-bench-'));
    const pipelines: Pipeline[] = [];
    try {
      const imported: Imported[] = [];
      for (const quant of QUANTS) {
        context.progress(`gguf: importing ${files[quant]} (a process of its own)`);
        const out = join(work, quant);
        const { ms, peakRssBytes } = await importInChild(context.cliBin, files[quant], out);
        imported.push({
          quant,
          file: files[quant],
          fileBytes: (await stat(files[quant])).size,
          dir: await openModelDir(out),
          importMs: ms,
          importPeakRssBytes: peakRssBytes,
        });
      }
      for (const m of imported)
        pipelines.push(
          await LocalPipeline.create(m.dir, { stages: 1, stage: { intraOpThreads: THREADS } }),
        );
      const decodeMs = imported.map(() => [] as number[]);
      const prefillMs = imported.map(() => [] as number[]);
      const peer = imported.map(() => [] as LlamaBenchFigure[]);
      for (const [i, m] of imported.entries())
        await timeDecode(pipelines[i]!, DECODE_CONTEXT_TOKENS, 4, m.dir.manifest.config.vocabSize); // warm-up
      for (let round = 1; round <= rounds; round++) {
        for (const [i, m] of imported.entries()) {
          context.progress(
            `gguf: round ${round}/${rounds}, ${m.quant}: SwarmBee${llamaBench ? ', then llama-bench' : ''}`,
          );
          const vocab = m.dir.manifest.config.vocabSize;
          prefillMs[i]!.push(await timePrefill(pipelines[i]!, PREFILL_TOKENS, vocab));
          decodeMs[i]!.push(
            ...(await timeDecode(pipelines[i]!, DECODE_CONTEXT_TOKENS, decodeSteps, vocab)),
          );
          if (llamaBench)
            peer[i]!.push(
              await runLlamaBench(llamaBench, m.file, {
                promptTokens: PREFILL_TOKENS,
                decodeTokens: decodeSteps,
                threads: THREADS,
              }),
            );
        }
      }
      context.progress('gguf: measuring memory bandwidth (a 256 MiB copy)');
      const bandwidth = measureCopyBandwidth();
      return report(context, started, imported, {
        decodeMs,
        prefillMs,
        peer,
        bandwidth,
        rounds,
        decodeSteps,
        ggufDir,
        llamaBench,
      });
    } finally {
      await Promise.all(pipelines.map((p) => p.close()));
      await rm(work, { recursive: true, force: true });
    }
  },
};

interface Measured {
  decodeMs: number[][];
  prefillMs: number[][];
  peer: LlamaBenchFigure[][];
  bandwidth: number;
  rounds: number;
  decodeSteps: number;
  ggufDir: string;
  llamaBench: string | undefined;
}

function report(
  context: Parameters<Suite['run']>[0],
  started: number,
  imported: Imported[],
  measured: Measured,
): BenchResult {
  const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
  const decode = measured.decodeMs.map((ms) => 1000 / summarize(ms).median);
  const prefill = measured.prefillMs.map((ms) => (PREFILL_TOKENS * 1000) / summarize(ms).median);
  const median = (xs: number[]) => summarize(xs).median;
  const peerDecode = measured.peer.map((p) =>
    p.length ? median(p.map((f) => f.decodeTokensPerSecond)) : Number.NaN,
  );
  const peerPrefill = measured.peer.map((p) =>
    p.length ? median(p.map((f) => f.prefillTokensPerSecond)) : Number.NaN,
  );
  const weights = imported.map((m) => m.dir.manifest.weights.bytes);
  const roofline = imported.map((_, i) => (decode[i]! * weights[i]!) / measured.bandwidth);
  const metrics: BenchResult['metrics'] = {
    copyBandwidthBytesPerSecond: { unit: 'B/s', summary: summarize([measured.bandwidth]) },
  };
  imported.forEach((m, i) => {
    metrics[`decodeStepMs.${m.quant}`] = {
      unit: 'ms',
      summary: summarize(measured.decodeMs[i]!),
      samples: measured.decodeMs[i]!,
    };
    metrics[`prefillMs.${m.quant}`] = {
      unit: 'ms',
      summary: summarize(measured.prefillMs[i]!),
      samples: measured.prefillMs[i]!,
    };
    metrics[`importMs.${m.quant}`] = { unit: 'ms', summary: summarize([m.importMs]) };
    metrics[`importPeakRssBytes.${m.quant}`] = {
      unit: 'B',
      summary: summarize([m.importPeakRssBytes]),
    };
    if (measured.peer[i]!.length) {
      metrics[`llamaCppDecodeTokensPerSecond.${m.quant}`] = {
        unit: 'tok/s',
        summary: summarize(measured.peer[i]!.map((f) => f.decodeTokensPerSecond)),
      };
      metrics[`llamaCppPrefillTokensPerSecond.${m.quant}`] = {
        unit: 'tok/s',
        summary: summarize(measured.peer[i]!.map((f) => f.prefillTokensPerSecond)),
      };
    }
  });
  const q4 = QUANTS.indexOf('q4_0');
  const f32 = QUANTS.indexOf('f32');
  const checks: BenchCheck[] = [
    check(
      'Q4_0 decodes faster than F32',
      decode[q4]! / decode[f32]!,
      1,
      'decode tok/s at Q4_0 / at F32',
    ),
    check(
      'F32 decode reaches the memory roofline',
      roofline[f32]!,
      0.5,
      'decode tok/s × weight bytes / copy bandwidth',
    ),
  ];
  const tables: BenchResult['tables'] = [
    {
      title: 'Import',
      head: ['file', 'GGUF size', 'stored', 'import s', 'import peak RSS'],
      rows: imported.map((m) => [
        m.file.split('/').pop()!,
        `${fmt(m.fileBytes / 2 ** 20)} MiB`,
        `${fmt(m.dir.manifest.weights.bytes / 2 ** 20)} MiB`,
        fmt(m.importMs / 1000, 2),
        `${fmt(m.importPeakRssBytes / 2 ** 20)} MiB`,
      ]),
    },
    {
      title: `SwarmBee: one stage, batch 1, ${THREADS} threads`,
      head: [
        'quant',
        'prefill tok/s (128)',
        'decode tok/s (ctx 16)',
        'weights streamed / copy bandwidth',
      ],
      rows: imported.map((m, i) => [
        m.quant,
        fmt(prefill[i]!),
        fmt(decode[i]!),
        fmt(roofline[i]!, 2),
      ]),
    },
  ];
  if (measured.llamaBench)
    tables.push({
      title: `llama.cpp (llama-bench -p ${PREFILL_TOKENS} -n ${measured.decodeSteps} -t ${THREADS}), same rounds`,
      head: [
        'quant',
        'prefill tok/s',
        'decode tok/s',
        'SwarmBee / llama.cpp prefill',
        'SwarmBee / llama.cpp decode',
      ],
      rows: imported.map((m, i) => [
        m.quant,
        fmt(peerPrefill[i]!),
        fmt(peerDecode[i]!),
        fmt(prefill[i]! / peerPrefill[i]!, 2),
        fmt(decode[i]! / peerDecode[i]!, 2),
      ]),
    });
  return {
    suite: 'gguf',
    title: 'GGUF: import, prefill and decode at F32, Q8_0 and Q4_0',
    ...resultHeader(context, started, imported[0]!.dir, `GGUF files in ${measured.ggufDir}`),
    options: {
      rounds: measured.rounds,
      decodeSteps: measured.decodeSteps,
      threads: THREADS,
      prefillTokens: PREFILL_TOKENS,
      quick: context.quick,
    },
    notes: [
      `Models alternate within each of ${measured.rounds} round(s); SwarmBee's figures are medians over the rounds (decode: ${measured.decodeSteps} steps a round after a prefill of ${DECODE_CONTEXT_TOKENS} tokens; prefill: one ${PREFILL_TOKENS}-token step a round).`,
      'Imports run in a child process each, so the time and peak RSS are the import alone (the time excludes starting Node).',
      'SwarmBee runs Q4_0 and Q8_0 weights as MatMulNBits with int8 activations (the import default), as llama.cpp quantizes activations for its quantized matmuls; the embedding is stored fp32.',
      measured.llamaBench
        ? `llama.cpp: ${measured.llamaBench}, one repetition per round, in the same rounds as SwarmBee; ratios are SwarmBee / llama.cpp.`
        : 'llama.cpp was not found (--llama-cpp DIR, $SWARMBEE_LLAMA_CPP or llama-bench on PATH): no peer figures in this run.',
    ],
    metrics,
    tables,
    checks,
    charts: [
      {
        file: 'gguf-decode-tokens-per-second.svg',
        title: 'Decode tokens/s',
        svg: barChart({
          title: `Decode tokens/s, batch 1, ${THREADS} threads`,
          unit: 'tokens/s',
          bars: imported.flatMap((m, i) => [
            { label: `SwarmBee ${m.quant}`, value: decode[i]! },
            ...(measured.llamaBench
              ? [{ label: `llama.cpp ${m.quant}`, value: peerDecode[i]! }]
              : []),
          ]),
        }),
      },
    ],
  };
}
