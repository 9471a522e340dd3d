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
import { type BenchResult, check } from '../report/report.js';
import { summarize } from '../stats.js';
import type { SuiteContext } from '../suite.js';
import { cachedQuantized, type SuitePart } from '../suites/optimize-speed.js';
import { type FinetuneRun, runFinetune, words } from './finetune-process.js';
import { FINETUNE_CORPUS } from './pipeline-part.js';

const RUN_TIMEOUT_MS = 30 * 60_000;
const MIB = 2 ** 20;

export async function resourcesPart(context: SuiteContext, root: string): Promise<SuitePart> {
  const small = requireLlamaDir(await cachedSynthModel('small'), 'finetune bench');
  const rounds = context.quick ? 1 : 2;
  const activationRows: { label: string; args: string[]; runs: FinetuneRun[] }[] = [
    {
      label: '1 stage, recompute',
      args: ['--stages', '1', '--activations', 'recompute'],
      runs: [],
    },
    { label: '1 stage, stash', args: ['--stages', '1', '--activations', 'stash'], runs: [] },
    {
      label: '3 stages, recompute',
      args: ['--stages', '3', '--activations', 'recompute'],
      runs: [],
    },
    { label: '3 stages, stash', args: ['--stages', '3', '--activations', 'stash'], runs: [] },
  ];
  const activationSteps = context.quick ? 2 : 4;
  for (let round = 0; round < rounds; round++)
    for (const row of round % 2 === 0 ? activationRows : [...activationRows].reverse()) {
      context.progress(`finetune: 15M shape, ${row.label} (round ${round + 1}/${rounds})`);
      row.runs.push(
        await runFinetune(
          context.cliBin,
          [
            ...['--model', small.path, '--data', FINETUNE_CORPUS],
            ...['--out', join(root, `act-${round}-${row.label.replaceAll(/[ ,]+/g, '-')}`)],
            ...words(
              `--targets all --steps ${activationSteps} --micro-batch-size 4 --accumulation 3`,
            ),
            ...words('--truncate --threads 1 --checkpoint-interval 0'),
            ...row.args,
          ],
          RUN_TIMEOUT_MS,
        ),
      );
    }

  const big = requireLlamaDir(await cachedSynthModel(BENCH_PRESET), 'finetune bench');
  const precisionRows: { label: string; path: string; runs: FinetuneRun[] }[] = [
    { label: 'fp32', path: big.path, runs: [] },
  ];
  for (const bits of [8, 4] as const) {
    context.progress(`finetune: ${BENCH_PRESET} int${bits} (cached after the first run)`);
    precisionRows.push({
      label: `int${bits}`,
      path: (await cachedQuantized(big, bits, 'int8')).path,
      runs: [],
    });
  }
  const precisionSteps = context.quick ? 2 : 3;
  for (const row of precisionRows) {
    context.progress(`finetune: ${BENCH_PRESET} ${row.label} base, ${precisionSteps} steps`);
    row.runs.push(
      await runFinetune(
        context.cliBin,
        [
          ...[
            '--model',
            row.path,
            '--data',
            FINETUNE_CORPUS,
            '--out',
            join(root, `prec-${row.label}`),
          ],
          ...words(
            `--targets q_proj,v_proj --steps ${precisionSteps} --micro-batch-size 1 --accumulation 2`,
          ),
          ...words('--seq-len 64 --truncate --threads 2 --checkpoint-interval 0'),
        ],
        RUN_TIMEOUT_MS,
      ),
    );
  }
  return assemble(activationRows, precisionRows, activationSteps, precisionSteps);
}

function assemble(
  activationRows: { label: string; runs: FinetuneRun[] }[],
  precisionRows: { label: string; runs: FinetuneRun[] }[],
  activationSteps: number,
  precisionSteps: number,
): SuitePart {
  const speed = (runs: FinetuneRun[]) => summarize(runs.map((r) => r.tokensPerSecond)).median;
  const rss = (runs: FinetuneRun[]) => Math.max(...runs.map((r) => r.peakRssBytes));
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
  return {
    metrics,
    tables: [
      {
        title: `Keeping activations: 15M shape (dim 288, 6 layers), LoRA r=8 on all projections, 12 sequences of ≤ 256 tokens a step, ${activationSteps} steps`,
        head: [
          'pipeline, activations',
          'tokens/s',
          'vs recompute',
          'peak RSS (MiB)',
          'vs recompute',
        ],
        rows: activationRows.map((row, i) => {
          const baseline = activationRows[i - (i % 2)]!.runs;
          return [
            row.label,
            speed(row.runs).toFixed(0),
            (speed(row.runs) / speed(baseline)).toFixed(2),
            (rss(row.runs) / MIB).toFixed(0),
            (rss(row.runs) / rss(baseline)).toFixed(2),
          ];
        }),
      },
      {
        title: `Frozen base precision: ${BENCH_PRESET} shape (dim 768, 12 layers), LoRA r=8 on q and v, 2 sequences of ≤ 64 tokens a step, ${precisionSteps} steps, 2 threads`,
        head: ['base weights', 'tokens/s', 'vs fp32', 'peak RSS (MiB)', 'vs fp32'],
        rows: precisionRows.map((row) => [
          row.label,
          speed(row.runs).toFixed(1),
          (speed(row.runs) / speed(fp32)).toFixed(2),
          (rss(row.runs) / MIB).toFixed(0),
          (rss(row.runs) / rss(fp32)).toFixed(2),
        ]),
      },
    ],
    checks: [
      check(
        'stash / recompute peak RSS, 3 stages',
        rss(stash3!) / rss(recompute3!),
        1.2,
        'peak RSS of the stashing run / the recomputing one: what recomputing saves',
      ),
      check(
        'recompute / stash tokens/s, 1 stage',
        speed(recompute1!) / speed(stash1!),
        0.9,
        'recomputing runs the forward pass twice; stashing moves every activation out of onnxruntime and back',
      ),
      check(
        'int4 / fp32 peak RSS',
        rss(precisionRows[2]!.runs) / rss(fp32),
        0.7,
        `${BENCH_PRESET}: peak RSS of training on int4 codes / on fp32 weights`,
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
