/**
 * The fidelity half of `npm run bench -- optimize`: stories260K (a trained model, from
 * ../shared/models) quantized to int8 and int4 and pruned by 1 and 2 layers, each measured
 * against the fp32 model on the default corpus — KL divergence, top-1 agreement,
 * perplexity — plus decode speed before and after pruning, and the additive fidelity
 * model of the deployment search against direct measurements.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  importLlama2c,
  type LlamaModelDir,
  type ModelDir,
  pruneModel,
  quantizeModel,
  VariantBuilder,
} from '@swarmbee/model';
import {
  checkPredictions,
  choosePrune,
  type DecodeSpeed,
  type FidelityFigures,
  measureLayerFidelity,
  measureLayerSimilarity,
  measureModelDecodeSpeeds,
  modelFidelity,
  type PruneChoice,
  referenceRun,
} from '@swarmbee/optimize';
import type { DeploymentConfig, LayerChoice } from '@swarmbee/planner';
import { check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { SHARED_MODELS } from '../shared-models.js';
import type { SuiteContext } from '../suite.js';
import type { SuitePart } from './optimize-speed.js';

interface Row {
  label: string;
  dir: ModelDir;
  fidelity: FidelityFigures;
}

export async function fidelityPart(context: SuiteContext): Promise<SuitePart> {
  const checkpoint = join(SHARED_MODELS, 'stories260K', 'stories260K.bin');
  if (!existsSync(checkpoint)) {
    return {
      tables: [],
      checks: [],
      charts: [],
      metrics: {},
      notes: [`stories260K is missing (${checkpoint}): its fidelity figures were not measured.`],
    };
  }
  const root = await mkdtemp(join(tmpdir(), 'swarmbee-bench-optimize-'));
  try {
    context.progress('optimize: stories260K — import, reference run over the corpus');
    const base = await importLlama2c({
      checkpoint,
      tokenizer: join(SHARED_MODELS, 'stories260K', 'tok512.bin'),
      out: join(root, 'fp32'),
    });
    const run = await referenceRun(base);
    const rows: Row[] = [];
    for (const bits of [8, 4] as const) {
      const dir = await quantizeModel(base, { bits, out: join(root, `int${bits}`) });
      rows.push({ label: `fp32 → int${bits}`, dir, fidelity: await modelFidelity(dir, run) });
    }
    context.progress('optimize: stories260K — layer similarity, pruning 1 and 2 layers');
    const similarity = await measureLayerSimilarity(base, run.corpus);
    const choices: PruneChoice[] = [];
    for (const count of [1, 2]) {
      const choice = await choosePrune(base, run.reference, similarity, count);
      choices.push(choice);
      const dir = await pruneModel(base, {
        drop: choice.chosen.drop,
        out: join(root, `pruned${count}`),
      });
      rows.push({
        label: `prune ${count} (layer${count > 1 ? 's' : ''} ${choice.chosen.drop.join(', ')})`,
        dir,
        fidelity: await modelFidelity(dir, run),
      });
    }
    context.progress('optimize: stories260K — decode speed before and after pruning');
    const speeds = await measureModelDecodeSpeeds([{ label: 'fp32', dir: base }, ...rows], {
      steps: 32,
      rounds: context.quick ? 3 : 6,
      stage: { intraOpThreads: 2 },
    });
    context.progress('optimize: stories260K — per-layer fidelity and the additive model');
    const table = await measureLayerFidelity(base, run.reference, { cacheDir: false });
    const checks = await checkPredictions(
      base,
      table,
      run,
      validationConfigs(base, table.dropped!),
      {
        builder: new VariantBuilder(base),
      },
    );
    return assemble(base, run.corpus.predictions, rows, choices, speeds, checks);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** All int8, all int4, half and half, and the cheapest drop with the rest int8. */
function validationConfigs(base: LlamaModelDir, dropped: { kl: number }[]): DeploymentConfig[] {
  const n = base.manifest.config.nLayers;
  const all = (c: LayerChoice) => Array.from({ length: n }, () => c);
  const half = all('int8').map((c, l) => (l < n / 2 ? 'int4' : c));
  const cheapest = dropped.reduce((best, d, l) => (d.kl < dropped[best]!.kl ? l : best), 0);
  const dropOne = all('int8').map((c, l) => (l === cheapest ? 'drop' : c));
  return [all('int8'), all('int4'), half, dropOne];
}

function assemble(
  base: LlamaModelDir,
  positions: number,
  rows: Row[],
  choices: PruneChoice[],
  speeds: DecodeSpeed[],
  predictions: Awaited<ReturnType<typeof checkPredictions>>,
): SuitePart {
  const fmt = (v: number, digits = 4) => v.toFixed(digits);
  const int8 = rows[0]!.fidelity;
  const int4 = rows[1]!.fidelity;
  const worstKlError = Math.max(...predictions.map((p) => Math.abs(p.klRelativeError)));
  const worstTop1Error = Math.max(...predictions.map((p) => Math.abs(p.top1Error)));
  const baseSpeed = speeds[0]!.tokensPerSecond;
  return {
    metrics: {},
    notes: [
      `stories260K: fidelity against the fp32 model over the default corpus (packages/optimize/corpus/default.txt, ${positions} predicted tokens, teacher forcing, logits for every position). KL is the mean KL(P_fp32 ‖ P_model) in nats per token, as llama.cpp's perplexity --kl-divergence reports it.`,
      "Pruning ranks layers by Block Influence (1 − cos of a layer's input and output hidden states, ShortGPT) and compares the least-influence set with the best consecutive run (1 − cos across the run); the lower measured KL wins.",
      "Fidelity model of the deployment search: a configuration's KL is the sum of each changed layer's KL measured alone; its top-1 miss rate is c·√KL with c fitted to those single-layer measurements. The table sets both against direct measurement.",
    ],
    checks: [
      check(
        'stories260K int8 top-1 agreement',
        int8.top1,
        0.98,
        'positions where int8 and fp32 agree on the most likely token / positions',
      ),
      check(
        'stories260K int4 top-1 agreement',
        int4.top1,
        0.5,
        'positions where int4 and fp32 agree / positions',
      ),
      check(
        'top-1 model (1 − top-1 ≈ c·√KL), worst error',
        worstTop1Error,
        0.1,
        '|predicted − measured| top-1 agreement over the validation configurations',
        '<=',
      ),
      check(
        'additive KL model, worst relative error',
        worstKlError,
        0.5,
        '|predicted − measured| / measured KL over the validation configurations',
        '<=',
      ),
    ],
    tables: [
      {
        title: 'stories260K: fidelity against fp32',
        head: [
          'model',
          'weights',
          'KL (nats/token)',
          'KL p99',
          'top-1 agreement',
          'perplexity (fp32)',
          'decode tok/s',
          'vs fp32',
        ],
        rows: rows.map((row) => {
          const speed = speeds.find((s) => s.label === row.label)!;
          return [
            row.label,
            `${(row.dir.manifest.weights.bytes / 1024).toFixed(0)} KiB`,
            fmt(row.fidelity.kl),
            fmt(row.fidelity.klP99),
            fmt(row.fidelity.top1, 3),
            `${row.fidelity.perplexity.toFixed(3)} (${row.fidelity.referencePerplexity.toFixed(3)})`,
            speed.tokensPerSecond.toFixed(0),
            (speed.tokensPerSecond / baseSpeed).toFixed(2),
          ];
        }),
      },
      {
        title: 'stories260K: pruning candidates',
        head: ['layers', 'kind', 'drop', 'influence', 'KL', 'top-1', 'chosen'],
        rows: choices.flatMap((choice) =>
          choice.candidates.map((c) => [
            c.drop.length,
            c.kind,
            c.drop.join(', '),
            fmt(c.influence),
            fmt(c.fidelity.kl),
            fmt(c.fidelity.top1, 3),
            c === choice.chosen ? 'yes' : '',
          ]),
        ),
      },
      {
        title: 'stories260K: Block Influence per layer',
        head: ['layer', ...choices[0]!.blockInfluence.map((_, l) => String(l))],
        rows: [['BI', ...choices[0]!.blockInfluence.map((b) => fmt(b))]],
      },
      {
        title: 'stories260K: additive fidelity model against measurement',
        head: [
          'configuration',
          'predicted KL',
          'measured KL',
          'KL error',
          'predicted top-1',
          'measured top-1',
        ],
        rows: predictions.map((p) => [
          p.description,
          fmt(p.predicted.kl),
          fmt(p.measured.kl),
          `${(100 * p.klRelativeError).toFixed(0)}%`,
          fmt(p.predicted.top1, 3),
          fmt(p.measured.top1, 3),
        ]),
      },
    ],
    charts: [
      {
        file: 'top1-stories260k.svg',
        title: 'Top-1 agreement with fp32, stories260K',
        svg: barChart({
          title: `Top-1 agreement with fp32, ${base.manifest.name}`,
          unit: 'share of tokens',
          bars: rows.map((r) => ({
            label: r.label.replace(/ \(.*\)/, ''),
            value: r.fidelity.top1,
          })),
        }),
      },
    ],
  };
}
