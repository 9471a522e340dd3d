/**
 * The stories260K half of `npm run bench -- finetune`: LoRA training on the lighthouse
 * stories (packages/bench/corpus) over 1, 2 and 3 in-process stages (1F1B) and 3 with
 * GPipe — training tokens/s against one stage, peak memory, the loss after N steps
 * against one stage — and what the adapter does to perplexity on held-out stories of
 * the same theme and on the original style (the bundled TinyStories-like corpus).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importLlama2c, type LlamaModelDir } from '@swarmbee/model';
import { DEFAULT_CORPUS_FILE, summarize } from '@swarmbee/optimize';
import { type BenchResult, check } from '../report/report.js';
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

export const FINETUNE_CORPUS = fileURLToPath(
  new URL('../corpus/lighthouse.jsonl', import.meta.resolve('@swarmbee/bench')),
);
export const FINETUNE_HELDOUT = fileURLToPath(
  new URL('../corpus/lighthouse-heldout.jsonl', import.meta.resolve('@swarmbee/bench')),
);

export const RUN_TIMEOUT_MS = 30 * 60_000;
const MIB = 2 ** 20;

interface PipelineRow {
  label: string;
  stages: number;
  schedule: '1f1b' | 'gpipe';
}

const ROWS: PipelineRow[] = [
  { label: '1 stage', stages: 1, schedule: '1f1b' },
  { label: '2 stages, 1F1B', stages: 2, schedule: '1f1b' },
  { label: '3 stages, 1F1B', stages: 3, schedule: '1f1b' },
  { label: '3 stages, GPipe', stages: 3, schedule: 'gpipe' },
];

/** The bundled corpus's paragraphs as JSONL text records (the original style). */
async function originalStyle(root: string): Promise<string> {
  const paragraphs = (await readFile(DEFAULT_CORPUS_FILE, 'utf8'))
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const path = join(root, 'original-style.jsonl');
  await writeFile(path, `${paragraphs.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  return path;
}

export async function pipelinePart(
  context: SuiteContext,
  root: string,
  stories: { checkpoint: string; tokenizer: string },
): Promise<SuitePart & { model: LlamaModelDir; steps: number }> {
  const model = await importLlama2c({ ...stories, out: join(root, 's260k') });
  const original = await originalStyle(root);
  const steps = context.quick ? 8 : 24;
  const rounds = context.quick ? 1 : 3;
  const runs = await roundRobin(ROWS, rounds, (row, round) => {
    context.progress(
      `finetune: stories260K, ${row.label}, ${steps} steps (round ${round + 1}/${rounds})`,
    );
    return runFinetune(
      context.cliBin,
      [
        ...['--model', model.path, '--data', FINETUNE_CORPUS],
        ...['--out', join(root, `r${round}-${row.stages}-${row.schedule}`)],
        ...['--eval-data', FINETUNE_HELDOUT, '--eval-data', original],
        ...words(`--targets all --lr 2e-3 --steps ${steps} --stages ${row.stages}`),
        ...words(`--schedule ${row.schedule} --threads 1 --checkpoint-interval 0`),
      ],
      RUN_TIMEOUT_MS,
    );
  });
  return {
    model,
    steps,
    ...assemble(
      ROWS.map((row) => ({ row, runs: runs.get(row)! })),
      steps,
      rounds,
    ),
  };
}

function assemble(
  rows: { row: PipelineRow; runs: FinetuneProcessRun[] }[],
  steps: number,
  rounds: number,
): SuitePart {
  const base = rows[0]!.runs;
  const history = (runs: FinetuneProcessRun[]) => runs[0]!.result.history;
  const lossDiff = (runs: FinetuneProcessRun[]) => lossDifference(runs, base);
  const speed = (runs: FinetuneProcessRun[]) => roundRatios(runs, base, (r) => r.tokensPerSecond);
  const [target, original] = base[0]!.result.eval;
  const ratio = (e: typeof target) => e!.after!.perplexity / e!.before.perplexity;
  const metrics: BenchResult['metrics'] = tokensMetrics(rows);
  metrics['target-style perplexity after / before'] = {
    unit: 'ratio',
    summary: summarize([ratio(target)]),
  };
  metrics['original-style perplexity after / before'] = {
    unit: 'ratio',
    summary: summarize([ratio(original)]),
  };
  return {
    metrics,
    tables: [
      {
        title: `Training on stories260K: LoRA r=8 on all 7 projections of every layer, 16 sequences a step (4 micro-batches of 4), ${steps} steps, ${rounds} round(s)`,
        head: [
          'pipeline',
          'tokens/s (median)',
          'vs 1 stage, per round',
          `loss after ${steps} steps`,
          'max |Δloss| / loss vs 1 stage',
          'peak RSS (MiB)',
        ],
        rows: rows.map(({ row, runs }, i) => [
          row.label,
          summarize(runs.map((r) => r.tokensPerSecond)).median.toFixed(0),
          i === 0 ? '1' : formatRatio(speed(runs)),
          history(runs).at(-1)!.loss.toFixed(5),
          i === 0 ? '-' : lossDiff(runs).toExponential(1),
          (Math.max(...runs.map((run) => run.peakRssBytes)) / MIB).toFixed(0),
        ]),
      },
      {
        title: `Perplexity before and after ${steps} steps (the 1-stage run)`,
        head: ['held-out text', 'tokens', 'before', 'after', 'after / before'],
        rows: [
          [
            'lighthouse stories (target style, 6 not trained on)',
            target!.targetTokens,
            target!.before.perplexity.toFixed(3),
            target!.after!.perplexity.toFixed(3),
            ratio(target).toFixed(3),
          ],
          [
            'bundled corpus (original style)',
            original!.targetTokens,
            original!.before.perplexity.toFixed(3),
            original!.after!.perplexity.toFixed(3),
            ratio(original).toFixed(3),
          ],
        ],
      },
    ],
    checks: [
      ...rows
        .slice(1)
        .map(({ row, runs }) =>
          check(
            `loss of ${row.label} vs 1 stage`,
            lossDiff(runs),
            1e-5,
            'max over steps of |loss − 1-stage loss| / 1-stage loss',
            '<=',
          ),
        ),
      check(
        'target-style perplexity after / before',
        ratio(target),
        0.6,
        'held-out lighthouse stories',
        '<=',
      ),
      check(
        'original-style perplexity after / before',
        ratio(original),
        1.25,
        'bundled corpus: the bound on forgetting',
        '<=',
      ),
    ],
    charts: [
      tokensChart(
        'finetune-pipeline.svg',
        'stories260K LoRA training tokens/s (in-process stages, 2 cores)',
        rows,
      ),
    ],
    notes: [
      "Every run is `swarmbee finetune --json` as a child process (threads 1 per stage, recompute, seed 1); tokens/s counts real (non-padding) tokens over the steps' wall time; peak RSS is the process's VmHWM. Ratios are taken within each round (the rows alternate order between rounds): median (min–max).",
      "Stages of one process share this machine's 2 cores, so more stages add threads, hand-offs and one more forward pass per non-last stage (its forward graph, then the recompute), not compute power: the in-process rows measure that overhead, not a speed-up (that needs devices: phase 2).",
      "Perplexity is exp(mean cross-entropy) of the records' tokens through the training forward graphs, before training and after the last step; the target-style records were not trained on.",
    ],
  };
}
