/** Tables, checks and metrics of the engine suite's comparison with llama.cpp (see engine-peer.ts). */

import { summarize } from '@swarmbee/optimize';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import type { PeerCell, PeerSummary } from './engine-peer.js';
import { STEP_PARTS } from './engine-steps.js';

/** Targets of issue 18: decode SwarmBee / llama.cpp per precision, and prefill. */
export const PEER_DECODE_TARGETS = { fp32: 1.1, int8: 1.0, int4: 1.0 } as const;
export const PEER_PREFILL_TARGET = 1.2;

export interface PeerPart {
  tables: BenchResult['tables'];
  checks: BenchCheck[];
  charts: BenchResult['charts'];
  metrics: BenchResult['metrics'];
  notes: string[];
}

const fmt = (v: number | undefined, digits = 1) =>
  v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : '-';

export function peerPart(
  cells: readonly PeerCell[],
  summaries: readonly PeerSummary[],
  options: {
    bandwidth: number;
    llamaBench?: string;
    prefillTokens: number;
    decodeContext: number;
    decodeSteps: number;
    rounds: number;
  },
): PeerPart {
  const withPeer = options.llamaBench !== undefined;
  const gbs = (tps: number | undefined, bytes: number | undefined) =>
    tps !== undefined && bytes !== undefined ? (tps * bytes) / options.bandwidth : undefined;
  const head = ['precision', 'threads', 'decode tok/s', 'prefill tok/s', 'roofline'];
  if (withPeer)
    head.push(
      'llama.cpp decode',
      'llama.cpp prefill',
      'llama.cpp roofline',
      'decode ratio (spread)',
      'prefill ratio',
    );
  const rows = cells.map((c, i) => {
    const s = summaries[i]!;
    const row: (string | number)[] = [
      `${c.precision}${withPeer ? ` / ${c.quant.toUpperCase()}` : ''}`,
      c.threads,
      fmt(s.decodeTokensPerSecond),
      fmt(s.prefillTokensPerSecond),
      fmt(gbs(s.decodeTokensPerSecond, c.weightBytes), 2),
    ];
    if (withPeer)
      row.push(
        fmt(s.peerDecode),
        fmt(s.peerPrefill),
        fmt(gbs(s.peerDecode, c.ggufBytes), 2),
        `${fmt(s.decodeRatio, 2)} (${fmt(s.decodeRatioSpread?.[0], 2)}..${fmt(s.decodeRatioSpread?.[1], 2)})`,
        fmt(s.prefillRatio, 2),
      );
    return row;
  });
  const checks: BenchCheck[] = [];
  const metrics: BenchResult['metrics'] = {};
  cells.forEach((c, i) => {
    const s = summaries[i]!;
    const key = `${c.precision}.threads${c.threads}`;
    metrics[`peer.decodeStepMs.${key}`] = {
      unit: 'ms',
      summary: summarize(c.steps.map((x) => x.wallMs)),
      samples: c.steps.map((x) => x.wallMs),
    };
    metrics[`peer.prefillMs.${key}`] = {
      unit: 'ms',
      summary: summarize(c.prefillMs),
      samples: c.prefillMs,
    };
    for (const part of STEP_PARTS)
      metrics[`stepPartMs.${part}.${key}`] = {
        unit: 'ms',
        summary: summarize(c.steps.map((x) => x.parts[part])),
      };
    if (!withPeer || s.decodeRatio === undefined) return;
    metrics[`llamaCppDecodeTokensPerSecond.${key}`] = {
      unit: 'tok/s',
      summary: summarize(c.peer.map((f) => f.decodeTokensPerSecond)),
    };
    metrics[`llamaCppPrefillTokensPerSecond.${key}`] = {
      unit: 'tok/s',
      summary: summarize(c.peer.map((f) => f.prefillTokensPerSecond)),
    };
    checks.push(
      check(
        `${c.precision} decode vs llama.cpp ${c.quant.toUpperCase()}, ${c.threads} thread(s)`,
        s.decodeRatio,
        PEER_DECODE_TARGETS[c.precision],
        'SwarmBee tok/s / llama.cpp tok/s (median of per-round ratios)',
      ),
    );
    if (c.precision === 'fp32')
      checks.push(
        check(
          `fp32 prefill (${options.prefillTokens} tokens) vs llama.cpp F32, ${c.threads} thread(s)`,
          s.prefillRatio!,
          PEER_PREFILL_TARGET,
          'SwarmBee tok/s / llama.cpp tok/s (median of per-round ratios)',
        ),
      );
  });
  const tables: BenchResult['tables'] = [
    {
      title: withPeer ? 'Against llama.cpp, same weights, same rounds' : 'Precisions',
      head,
      rows,
    },
    {
      title: 'One decode step taken apart (medians, ms)',
      head: [
        'precision',
        'threads',
        'step',
        'graph run',
        'feeds',
        'KV',
        'sampling',
        'in-thread other',
        'thread hop',
      ],
      rows: cells.map((c, i) => {
        const p = summaries[i]!.parts;
        return [
          c.precision,
          c.threads,
          fmt(1000 / summaries[i]!.decodeTokensPerSecond, 3),
          fmt(p.graph, 3),
          fmt(p.feeds, 3),
          fmt(p.kv, 3),
          fmt(p.sampling, 3),
          fmt(p.stageOther, 3),
          fmt(p.hop, 3),
        ];
      }),
    },
  ];
  const notes = [
    `Against llama.cpp: ${options.rounds} round(s); in each, every precision is measured in SwarmBee (one prefill of ${options.prefillTokens} tokens, then ${options.decodeSteps} greedy decode steps after a ${options.decodeContext}-token prompt, the prefill after a warm-up prefill of the same length, as each llama-bench run makes one) and then${withPeer ? ` llama-bench runs on its GGUF file (-p ${options.prefillTokens} -n ${options.decodeSteps} -r 1, same threads)` : ' (no llama.cpp in this run)'}. Ratios are taken within each round; the figure is the median of the per-round ratios.`,
    'Roofline: decode tok/s × weight bytes (SwarmBee: the model dir; llama.cpp: the GGUF file) / copy bandwidth measured in the same run.',
    "Step parts: graph run (onnxruntime), feeds (ids, positions, bias), KV (room, past fed, new rows stored), sampling, the rest of the forward call inside the stage thread, and the hop to the thread and back (the caller's wall time less the time inside the thread).",
    withPeer
      ? `llama.cpp: ${options.llamaBench}; SwarmBee int8/int4 and llama.cpp Q8_0/Q4_0 are quantized by each runtime from the same fp32 weights.`
      : 'llama.cpp was not found (--llama-cpp DIR, $SWARMBEE_LLAMA_CPP or llama-bench on PATH): SwarmBee is compared only with itself.',
  ];
  const charts: BenchResult['charts'] = [
    {
      file: 'decode-vs-llama-cpp.svg',
      title: 'Decode tokens/s by precision and threads',
      svg: barChart({
        title: 'Decode tokens/s, batch 1',
        unit: 'tokens/s',
        bars: cells.flatMap((c, i) => [
          {
            label: `SwarmBee ${c.precision} ${c.threads}T`,
            value: summaries[i]!.decodeTokensPerSecond,
          },
          ...(withPeer
            ? [
                {
                  label: `llama.cpp ${c.quant} ${c.threads}T`,
                  value: summaries[i]!.peerDecode ?? 0,
                },
              ]
            : []),
        ]),
      }),
    },
  ];
  return { tables, checks, charts, metrics, notes };
}
