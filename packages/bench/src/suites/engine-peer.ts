/**
 * The engine against llama.cpp on the same weights: SwarmBee's fp32, int8 and int4 of the
 * benchmark model against llama.cpp's F32, Q8_0 and Q4_0 of it, at 1 and 2 threads — decode
 * (with each step taken apart) and prefill — in alternating rounds: each round measures
 * every precision in SwarmBee and then runs `llama-bench` on its file, so load elsewhere on
 * the machine hits both alike, and each ratio is taken within a round. Without llama.cpp
 * the same rounds run with SwarmBee alone.
 */
import { stat } from 'node:fs/promises';
import { LocalPipeline } from '@swarmbee/engine';
import type { ModelDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { type LlamaBenchFigure, runLlamaBench } from '../gguf/llama-bench.js';
import type { GgufFiles, GgufQuant } from '../gguf/llama-cpp-files.js';
import {
  medianParts,
  type StepPart,
  type StepSample,
  timeStageDecode,
  timeStagePrefill,
} from './engine-steps.js';

export interface PeerPrecision {
  label: 'fp32' | 'int8' | 'int4';
  /** llama.cpp's type for the same precision. */
  quant: GgufQuant;
  dir: ModelDir;
}

export interface PeerOptions {
  threads: readonly number[];
  rounds: number;
  decodeSteps: number;
  decodeContext: number;
  prefillTokens: number;
  llamaBench?: string;
  files?: GgufFiles;
  progress: (line: string) => void;
}

/** One precision at one thread count: SwarmBee's samples and llama.cpp's per-round figures. */
export interface PeerCell {
  precision: PeerPrecision['label'];
  quant: GgufQuant;
  threads: number;
  weightBytes: number;
  ggufBytes?: number;
  steps: StepSample[];
  prefillMs: number[];
  /** Per round: SwarmBee's median decode step. */
  roundDecodeMs: number[];
  peer: LlamaBenchFigure[];
}

export interface PeerSummary {
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  parts: Record<StepPart, number>;
  peerDecode?: number;
  peerPrefill?: number;
  /** Medians of the per-round ratios SwarmBee / llama.cpp. */
  decodeRatio?: number;
  prefillRatio?: number;
  decodeRatioSpread?: [number, number];
}

export async function measureAgainstPeer(
  precisions: readonly PeerPrecision[],
  options: PeerOptions,
): Promise<PeerCell[]> {
  const cells: PeerCell[] = [];
  for (const threads of options.threads) {
    const pipelines = [];
    try {
      for (const p of precisions)
        pipelines.push(
          await LocalPipeline.create(p.dir, { stages: 1, stage: { intraOpThreads: threads } }),
        );
      const row = await Promise.all(
        precisions.map(async (p): Promise<PeerCell> => {
          const cell: PeerCell = {
            precision: p.label,
            quant: p.quant,
            threads,
            weightBytes: p.dir.manifest.weights.bytes,
            steps: [],
            prefillMs: [],
            roundDecodeMs: [],
            peer: [],
          };
          if (options.files) cell.ggufBytes = (await stat(options.files[p.quant])).size;
          return cell;
        }),
      );
      for (const pipeline of pipelines)
        await timeStageDecode(pipeline.stages[0]!, options.decodeContext, 8); // warm-up
      for (let round = 1; round <= options.rounds; round++) {
        for (const [i, p] of precisions.entries()) {
          options.progress(
            `engine vs llama.cpp: ${threads} thread(s), round ${round}/${options.rounds}, ${p.label}${options.llamaBench ? `, then llama-bench ${p.quant}` : ''}`,
          );
          const stage = pipelines[i]!.stages[0]!;
          const cell = row[i]!;
          // A warm-up prefill of the same length first, as each llama-bench run makes: the
          // llama.cpp process just before leaves this process's memory to be faulted in again.
          await timeStagePrefill(stage, options.prefillTokens);
          cell.prefillMs.push(await timeStagePrefill(stage, options.prefillTokens));
          const steps = await timeStageDecode(stage, options.decodeContext, options.decodeSteps);
          cell.steps.push(...steps);
          cell.roundDecodeMs.push(summarize(steps.map((s) => s.wallMs)).median);
          if (options.llamaBench && options.files)
            cell.peer.push(
              await runLlamaBench(options.llamaBench, options.files[p.quant], {
                promptTokens: options.prefillTokens,
                decodeTokens: options.decodeSteps,
                threads,
              }),
            );
        }
      }
      cells.push(...row);
    } finally {
      await Promise.allSettled(pipelines.map((p) => p.close()));
    }
  }
  return cells;
}

export function summarizeCell(cell: PeerCell, prefillTokens: number): PeerSummary {
  const median = (xs: readonly number[]) => summarize(xs).median;
  const summary: PeerSummary = {
    decodeTokensPerSecond: 1000 / median(cell.steps.map((s) => s.wallMs)),
    prefillTokensPerSecond: (prefillTokens * 1000) / median(cell.prefillMs),
    parts: medianParts(cell.steps),
  };
  if (cell.peer.length === 0) return summary;
  const decodeRatios = cell.peer.map(
    (f, r) => 1000 / cell.roundDecodeMs[r]! / f.decodeTokensPerSecond,
  );
  const prefillRatios = cell.peer.map(
    (f, r) => (prefillTokens * 1000) / cell.prefillMs[r]! / f.prefillTokensPerSecond,
  );
  const spread = summarize(decodeRatios);
  return {
    ...summary,
    peerDecode: median(cell.peer.map((f) => f.decodeTokensPerSecond)),
    peerPrefill: median(cell.peer.map((f) => f.prefillTokensPerSecond)),
    decodeRatio: spread.median,
    decodeRatioSpread: [spread.min, spread.max],
    prefillRatio: median(prefillRatios),
  };
}
