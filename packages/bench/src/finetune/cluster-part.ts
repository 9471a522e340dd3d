/**
 * The cluster half of `npm run bench -- finetune`: the same LoRA run on stories260K (and on
 * the 15M shape) as `swarmbee finetune --url` over local clusters of 1, 2 and 3 worker
 * processes (even layer ranges, 1F1B), against the run in one process with one stage, in
 * alternating rounds: training tokens/s, the loss against one process, and each pipeline's idle
 * fraction — 1 − Σ stage compute time / (stages × step time) — beside 1F1B's bubble,
 * (K − 1) / (M + K − 1) for K stages and M micro-batches a step.
 */
import { join } from 'node:path';
import type { Plan } from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import { evenRanges, type LlamaModelDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { check } from '../report/report.js';
import type { SuiteContext } from '../suite.js';
import type { SuitePart } from '../suites/optimize-speed.js';
import {
  type FinetuneProcessRun,
  formatRatio,
  lossDifference,
  roundRatios,
  roundRobin,
  runFinetune,
  tokensChart,
  tokensMetrics,
  words,
} from './finetune-process.js';
import { FINETUNE_CORPUS, RUN_TIMEOUT_MS } from './pipeline-part.js';

/** Micro-batches a step (the suite's --accumulation). */
const MICRO_BATCHES = 4;

interface ClusterRow {
  label: string;
  /** Worker processes; 0: the in-process run. */
  workers: number;
  /** onnxruntime threads of the in-process run. Default 1, as each worker's. */
  threads?: number;
}

const ROWS: ClusterRow[] = [
  { label: 'in process, 1 stage', workers: 0 },
  { label: 'in process, 1 stage, 2 threads', workers: 0, threads: 2 },
  { label: '1 worker', workers: 1 },
  { label: '2 workers, 1F1B', workers: 2 },
  { label: '3 workers, 1F1B', workers: 3 },
];

/** 1 − Σ stage compute / (stages × training time): the share of stage time spent waiting. */
export function idleFraction(run: FinetuneProcessRun): number {
  const stats = run.result.stageStats ?? [];
  const busy = stats.reduce((sum, s) => sum + s.forwardMsTotal + s.backwardMsTotal, 0);
  return 1 - busy / (stats.length * run.result.trainingMs);
}

/** 1F1B's (and GPipe's) bubble: (K − 1) / (M + K − 1). */
export function bubbleFraction(stages: number, microBatches: number): number {
  return (stages - 1) / (microBatches + stages - 1);
}

/** A model the cluster part trains, and how long. */
export interface ClusterShape {
  /** What the tables call it. */
  name: string;
  model: LlamaModelDir;
  /** Steps of each run (and with --quick). */
  steps: { full: number; quick: number };
  /** Put before each row's label (metrics and checks are named by it): '' for the first shape. */
  key: string;
  chartFile: string;
}

export async function clusterPart(
  context: SuiteContext,
  root: string,
  shape: ClusterShape,
): Promise<SuitePart> {
  const { model } = shape;
  const steps = context.quick ? shape.steps.quick : shape.steps.full;
  const rounds = context.quick ? 1 : 3;
  const dir = (name: string) => join(root, `${shape.chartFile.replace('.svg', '')}-${name}`);
  const clusters = new Map<number, LocalCluster>();
  try {
    for (const row of ROWS.filter((r) => r.workers > 0)) {
      context.progress(
        `finetune: ${shape.name}, starting a local cluster of ${row.workers} worker(s)`,
      );
      const plan: Plan = {
        modelHash: model.manifest.modelHash,
        nLayers: model.manifest.config.nLayers,
        stages: evenRanges(model.manifest.config.nLayers, row.workers).map((r, i) => ({
          index: i,
          device: `worker-${i}`,
          layerStart: r.start,
          layerEnd: r.end,
        })),
      };
      clusters.set(
        row.workers,
        await LocalCluster.start({
          model,
          workers: row.workers,
          cliBin: context.cliBin,
          cacheDir: dir(`cluster-${row.workers}`),
          threads: 1,
          workerOutput: 'ignore',
          coordinator: { plan },
        }),
      );
    }
    const flags = words(
      `--data ${FINETUNE_CORPUS} --targets all --lr 2e-3 --steps ${steps} --accumulation ${MICRO_BATCHES} --checkpoint-interval 0 --truncate`,
    );
    const runs = await roundRobin(ROWS, rounds, (row, round) => {
      context.progress(
        `finetune: ${shape.name}, ${row.label}, ${steps} steps (round ${round + 1}/${rounds})`,
      );
      const out = ['--out', dir(`r${round}-${row.workers}-${row.threads ?? 1}`)];
      const where =
        row.workers === 0
          ? ['--model', model.path, '--stages', '1', '--threads', String(row.threads ?? 1)]
          : ['--url', clusters.get(row.workers)!.apiUrl, '--threads', '1'];
      return runFinetune(context.cliBin, [...where, ...out, ...flags], RUN_TIMEOUT_MS);
    });
    return assemble(
      shape,
      ROWS.map((row) => ({
        row: { ...row, label: `${shape.key}${row.label}` },
        runs: runs.get(row)!,
      })),
      steps,
      rounds,
    );
  } finally {
    await Promise.allSettled([...clusters.values()].map((c) => c.stop()));
  }
}

function assemble(
  shape: ClusterShape,
  rows: { row: ClusterRow; runs: FinetuneProcessRun[] }[],
  steps: number,
  rounds: number,
): SuitePart {
  const base = rows[0]!.runs;
  const lossDiff = (runs: FinetuneProcessRun[]) => lossDifference(runs, base);
  const metrics = tokensMetrics(rows);
  for (const { row, runs } of rows)
    if (row.workers > 1) {
      const idle = runs.map(idleFraction);
      metrics[`idle fraction, ${row.label}`] = {
        unit: 'ratio',
        summary: summarize(idle),
        samples: idle,
      };
    }
  return {
    metrics,
    tables: [
      {
        title: `Training on the cluster: ${shape.name}, LoRA r=8 on all 7 projections, 16 sequences a step (${MICRO_BATCHES} micro-batches of 4), ${steps} steps, ${rounds} round(s); each worker 1 thread`,
        head: [
          'where',
          'tokens/s (median)',
          'vs in process, per round',
          'max |Δloss| / loss vs in process',
          'idle fraction (median)',
          '1F1B bubble (theory)',
        ],
        rows: rows.map(({ row, runs }, i) => [
          row.label,
          summarize(runs.map((r) => r.tokensPerSecond)).median.toFixed(0),
          i === 0 ? '1' : formatRatio(roundRatios(runs, base, (r) => r.tokensPerSecond)),
          i === 0 ? '-' : lossDiff(runs).toExponential(1),
          row.workers > 1 ? summarize(runs.map(idleFraction)).median.toFixed(2) : '-',
          row.workers > 1 ? bubbleFraction(row.workers, MICRO_BATCHES).toFixed(2) : '-',
        ]),
      },
    ],
    checks: rows
      .filter(({ row }) => row.workers > 0)
      .map(({ row, runs }) =>
        check(
          `loss of ${row.label} vs in process`,
          lossDiff(runs),
          1e-5,
          'max over steps of |loss − in-process loss| / in-process loss',
          '<=',
        ),
      ),
    charts: [
      tokensChart(
        shape.chartFile,
        `${shape.name} LoRA training tokens/s: in process vs worker processes (2 cores)`,
        rows,
      ),
    ],
    // Said once, with the first shape.
    notes:
      shape.key !== ''
        ? []
        : [
            '`swarmbee finetune --url` against `LocalCluster`s (the coordinator in the bench process, workers as `swarmbee worker` processes, a given plan of even layer ranges), alternating rounds with the in-process run; the loss is the first round’s.',
            'Idle fraction: 1 − Σ over stages of forward + backward compute time (each stage’s own counters) / (stages × the steps’ wall time) — waiting for the neighbour stage, the hand-offs through the coordinator and the optimizer update. 1F1B’s bubble (K − 1) / (M + K − 1) is what equal stages with free hand-offs would leave idle.',
            'All processes share this machine’s 2 cores: more workers add hand-offs, not compute, so the rows measure the distributed step’s overhead, not the speed-up devices would bring.',
          ],
  };
}
