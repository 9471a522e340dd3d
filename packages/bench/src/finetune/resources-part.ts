/**
 * The memory-and-time half of `npm run bench -- finetune`, on synthetic models (random
 * weights: the figures are about cost, not quality):
 *
 * - keeping activations between a micro-batch's forward and backward pass — only the
 *   stage input, recomputing the rest (`recompute`, the default), or everything the
 *   backward pass reads (`stash`) — at 1 and 3 stages, on the 15M shape;
 * - the frozen base's precision — fp32, or int8 / int4 codes dequantized in the graph
 *   (blocked DequantizeLinear) each pass — on the 110M shape, where the weights
 *   dominate memory.
 */
import { join } from 'node:path';
import { BENCH_PRESET, cachedSynthModel, requireLlamaDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { type BenchResult, check } from '../report/report.js';
import type { SuiteContext } from '../suite.js';
import { cachedQuantized, type SuitePart } from '../suites/optimize-speed.js';
import {
  type FinetuneProcessRun,
  formatRatio,
  roundRatios,
  roundRobin,
  runFinetune,
  words,
} from './finetune-process.js';
import { FINETUNE_CORPUS, RUN_TIMEOUT_MS } from './pipeline-part.js';

const MIB = 2 ** 20;

interface Row {
  label: string;
  args: string[];
}

export async function resourcesPart(context: SuiteContext, root: string): Promise<SuitePart> {
  const small = requireLlamaDir(await cachedSynthModel('small'), 'finetune bench');
  const activationRows: Row[] = [
    { label: '1 stage, recompute', args: words('--stages 1 --activations recompute') },
    { label: '1 stage, stash', args: words('--stages 1 --activations stash') },
    { label: '3 stages, recompute', args: words('--stages 3 --activations recompute') },
    { label: '3 stages, stash', args: words('--stages 3 --activations stash') },
  ];
  const activationSteps = context.quick ? 2 : 3;
  const activationRounds = context.quick ? 1 : 3;
  const activationRuns = await roundRobin(activationRows, activationRounds, (row, round) => {
    context.progress(`finetune: 15M shape, ${row.label} (round ${round + 1}/${activationRounds})`);
    return runFinetune(
      context.cliBin,
      [
        ...['--model', small.path, '--data', FINETUNE_CORPUS],
        ...['--out', join(root, `act-${round}-${row.label.replaceAll(/[ ,]+/g, '-')}`)],
        ...words(`--targets all --steps ${activationSteps} --micro-batch-size 4 --accumulation 3`),
        ...words('--truncate --threads 1 --checkpoint-interval 0'),
        ...row.args,
      ],
      RUN_TIMEOUT_MS,
    );
  });

  const big = requireLlamaDir(await cachedSynthModel(BENCH_PRESET), 'finetune bench');
  const precisionRows: (Row & { path: string })[] = [{ label: 'fp32', path: big.path, args: [] }];
  for (const bits of [8, 4] as const) {
    context.progress(`finetune: ${BENCH_PRESET} int${bits} (cached after the first run)`);
    const dir = await cachedQuantized(big, bits, 'int8');
    precisionRows.push({ label: `int${bits}`, path: dir.path, args: [] });
  }
  const precisionSteps = context.quick ? 2 : 3;
  const precisionRounds = context.quick ? 1 : 2;
  const precisionRuns = await roundRobin(precisionRows, precisionRounds, (row, round) => {
    context.progress(
      `finetune: ${BENCH_PRESET} ${row.label} base (round ${round + 1}/${precisionRounds})`,
    );
    return runFinetune(
      context.cliBin,
      [
        ...[
          '--model',
          row.path,
          '--data',
          FINETUNE_CORPUS,
          '--out',
          join(root, `prec-${round}-${row.label}`),
        ],
        ...words(
          `--targets q_proj,v_proj --steps ${precisionSteps} --micro-batch-size 1 --accumulation 2`,
        ),
        ...words('--seq-len 64 --truncate --threads 2 --checkpoint-interval 0'),
      ],
      RUN_TIMEOUT_MS,
    );
  });
  return assemble(
    activationRows.map((row) => ({ label: row.label, runs: activationRuns.get(row)! })),
    precisionRows.map((row) => ({ label: row.label, runs: precisionRuns.get(row)! })),
    { activationSteps, activationRounds, precisionSteps, precisionRounds },
  );
}

function assemble(
  activationRows: { label: string; runs: FinetuneProcessRun[] }[],
  precisionRows: { label: string; runs: FinetuneProcessRun[] }[],
  shape: {
    activationSteps: number;
    activationRounds: number;
    precisionSteps: number;
    precisionRounds: number;
  },
): SuitePart {
  const speed = (runs: FinetuneProcessRun[]) =>
    summarize(runs.map((r) => r.tokensPerSecond)).median;
  const rss = (runs: FinetuneProcessRun[]) => Math.max(...runs.map((r) => r.peakRssBytes));
  const perRound = (
    runs: FinetuneProcessRun[],
    base: FinetuneProcessRun[],
    value: (r: FinetuneProcessRun) => number,
  ) => roundRatios(runs, base, value);
  const metrics: BenchResult['metrics'] = {};
  for (const row of [...activationRows, ...precisionRows]) {
    const samples = row.runs.map((r) => r.tokensPerSecond);
    metrics[`train tokens/s, ${row.label}`] = {
      unit: 'tokens/s',
      summary: summarize(samples),
      samples,
    };
    metrics[`peak RSS, ${row.label}`] = {
      unit: 'bytes',
      summary: summarize(row.runs.map((r) => r.peakRssBytes)),
    };
  }
  const [recompute1, stash1, recompute3, stash3] = activationRows.map((r) => r.runs);
  const fp32 = precisionRows[0]!.runs;
  const table = (
    rows: { label: string; runs: FinetuneProcessRun[] }[],
    baseOf: (i: number) => FinetuneProcessRun[],
    digits: number,
  ) =>
    rows.map((row, i) => {
      const base = baseOf(i);
      const same = base === row.runs;
      return [
        row.label,
        speed(row.runs).toFixed(digits),
        same ? '1' : formatRatio(perRound(row.runs, base, (r) => r.tokensPerSecond)),
        (rss(row.runs) / MIB).toFixed(0),
        same ? '1' : formatRatio(perRound(row.runs, base, (r) => r.peakRssBytes)),
      ];
    });
  return {
    metrics,
    tables: [
      {
        title: `Keeping activations: 15M shape (dim 288, 6 layers), LoRA r=8 on all projections, 12 sequences of ≤ 256 tokens a step, ${shape.activationSteps} steps, ${shape.activationRounds} round(s)`,
        head: [
          'pipeline, activations',
          'tokens/s (median)',
          'vs recompute, per round',
          'peak RSS (MiB)',
          'vs recompute, per round',
        ],
        rows: table(activationRows, (i) => activationRows[i - (i % 2)]!.runs, 0),
      },
      {
        title: `Frozen base precision: ${BENCH_PRESET} shape (dim 768, 12 layers), LoRA r=8 on q and v, 2 sequences of ≤ 64 tokens a step, ${shape.precisionSteps} steps, 2 threads, ${shape.precisionRounds} round(s)`,
        head: [
          'base weights',
          'tokens/s (median)',
          'vs fp32, per round',
          'peak RSS (MiB)',
          'vs fp32, per round',
        ],
        rows: table(precisionRows, () => fp32, 1),
      },
    ],
    checks: [
      check(
        'stash / recompute peak RSS, 3 stages',
        perRound(stash3!, recompute3!, (r) => r.peakRssBytes).median,
        1.2,
        'peak RSS of the stashing run / the recomputing one, median over rounds: what recomputing saves',
      ),
      check(
        'recompute / stash tokens/s, 1 stage',
        perRound(recompute1!, stash1!, (r) => r.tokensPerSecond).median,
        0.9,
        'median over rounds: recomputing runs the forward pass twice; stashing moves every activation out of onnxruntime and back',
      ),
      check(
        'int4 / fp32 peak RSS',
        perRound(precisionRows[2]!.runs, fp32, (r) => r.peakRssBytes).median,
        0.7,
        `${BENCH_PRESET}: peak RSS of training on int4 codes / on fp32 weights, median over rounds`,
        '<=',
      ),
    ],
    charts: [],
    notes: [
      "Keeping activations: `recompute` holds only each micro-batch's stage input until its backward pass, whose graph runs the forward pass again first; `stash` returns every value the backward pass reads from the forward graph (attention probabilities included) and feeds them back.",
      'Frozen base precision: int8 and int4 weights stay MatMulNBits codes in the model dir; the training graphs dequantize them with blocked DequantizeLinear in the forward and the backward pass (the backward pass needs dY × W, which MatMulNBits cannot compute), so the gradients are those of the loss the forward pass reports.',
    ],
  };
}
