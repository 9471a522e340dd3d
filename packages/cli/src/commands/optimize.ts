/**
 * `swarmbee optimize ...`: make models fit the edge before deploying them — quantize
 * linear weights to int8/int4, prune redundant layers, measure either against the model
 * it came from, and search deployments (pruning, precisions, partition) under a
 * fidelity budget (`optimize search`, in optimize-search.ts).
 */

import { InvalidArgumentError, type WeightQuantization } from '@swarmbee/core';
import {
  DEFAULT_QUANT_ACTIVATIONS,
  DEFAULT_QUANT_BLOCK_SIZE,
  layerPrecisions,
  type ModelDir,
  openModelDir,
  pruneModel,
  quantizeModel,
  requireLlamaDir,
} from '@swarmbee/model';
import {
  checkComparable,
  choosePrune,
  DEFAULT_CORPUS_FILE,
  DEFAULT_WINDOW_TOKENS,
  type FidelityFigures,
  measureLayerSimilarity,
  measureModelDecodeSpeeds,
  modelFidelity,
  referenceRun,
} from '@swarmbee/optimize';
import type { Argv } from 'yargs';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';
import { optimizeSearchCommand } from './optimize-search.js';

/** "0-5,8" → [0, 1, 2, 3, 4, 5, 8]: layer indices, ranges inclusive. */
export function parseLayerList(text: string): number[] {
  const layers = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const from = Number(match?.[1]);
    const to = match?.[2] === undefined ? from : Number(match[2]);
    if (!match || to < from) {
      throw new InvalidArgumentError(
        `--layers: "${part}" is not a layer or an inclusive range of layers (e.g. 0-5,8)`,
      );
    }
    for (let l = from; l <= to; l++) layers.add(l);
  }
  return [...layers].sort((a, b) => a - b);
}

/** Corpus flags every measuring subcommand takes. */
export function corpusOptions<T>(y: Argv<T>) {
  return y
    .option('corpus', {
      type: 'string',
      describe: `Plain-text corpus, paragraphs separated by blank lines (default: the bundled ${DEFAULT_CORPUS_FILE})`,
    })
    .option('window', {
      type: 'number',
      default: DEFAULT_WINDOW_TOKENS,
      describe: "Longest corpus window run at once, tokens (capped by the model's context)",
    })
    .option('threads', {
      type: 'number',
      describe: 'onnxruntime intra-op threads (default: all cores)',
    });
}

export function stageFrom(args: { threads?: number }) {
  return args.threads === undefined ? {} : { intraOpThreads: args.threads };
}

export function fidelityRows(f: FidelityFigures): string[][] {
  return [
    ['KL divergence (mean, nats/token)', f.kl.toFixed(5)],
    ['KL divergence (p99)', f.klP99.toFixed(5)],
    ['top-1 agreement', `${(100 * f.top1).toFixed(2)}%`],
    [
      'perplexity (reference → model)',
      `${f.referencePerplexity.toFixed(3)} → ${f.perplexity.toFixed(3)}`,
    ],
    ['predicted tokens compared', String(f.positions)],
  ];
}

const print = (text: string) => process.stdout.write(`${text}\n`);

function layerTable(before: ModelDir, after: ModelDir): string {
  const was = layerPrecisions(before);
  const now = layerPrecisions(after);
  const rows = after.manifest.layers.map((layer, l) => [
    l,
    was[l] === now[l] ? now[l]! : `${was[l]} → ${now[l]}`,
    `${formatBytes(before.manifest.layers[l]!.paramBytes)} → ${formatBytes(layer.paramBytes)}`,
  ]);
  rows.push([
    'all weights',
    '',
    `${formatBytes(before.manifest.weights.bytes)} → ${formatBytes(after.manifest.weights.bytes)} (${(after.manifest.weights.bytes / before.manifest.weights.bytes).toFixed(3)}×)`,
  ]);
  return renderTable(['layer', 'precision', 'bytes'], rows);
}

function quantizeCommand(y: Argv): Argv {
  return y.command(
    'quantize <dir>',
    'Quantize the linear weights of a model (all layers, or --layers) to int8 or int4',
    (c) =>
      c
        .positional('dir', {
          type: 'string',
          demandOption: true,
          describe: 'Model dir (fp32 layers)',
        })
        .option('bits', {
          type: 'number',
          choices: [8, 4],
          demandOption: true,
          describe: 'Bits per weight',
        })
        .option('block-size', {
          type: 'number',
          default: DEFAULT_QUANT_BLOCK_SIZE,
          describe:
            'Weights per quantization block along the input dimension (power of two, >= 16)',
        })
        .option('layers', {
          type: 'string',
          describe:
            'Only these layers, inclusive ranges (e.g. 0-5,8); others keep their precision (default: all)',
        })
        .option('head', {
          type: 'boolean',
          default: false,
          describe:
            'Quantize the LM head too (a head tied to the embedding becomes its own tensor)',
        })
        .option('activations', {
          choices: ['int8', 'float32'] as const,
          default: DEFAULT_QUANT_ACTIVATIONS,
          describe:
            'int8: quantize activations per block for integer matmuls (fast); float32: exact, much slower on CPUs',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'Model dir to create' })
        .option('name', {
          type: 'string',
          describe: 'Model name (default: source name + -int8/-int4)',
        }),
    async (args) => {
      const source = await openModelDir(args.dir);
      const out = await withProgress((progress) =>
        quantizeModel(source, {
          bits: args.bits,
          blockSize: args.blockSize,
          layers: args.layers === undefined ? undefined : parseLayerList(args.layers),
          head: args.head,
          activations: args.activations as WeightQuantization['activations'],
          out: args.out,
          name: args.name,
          progress,
        }),
      );
      print(`quantized ${source.manifest.name} into ${out.path} (${out.manifest.name})`);
      print(layerTable(source, out));
      print(`fidelity: swarmbee optimize eval ${out.path} --reference ${source.path}`);
    },
  );
}

function evalCommand(y: Argv): Argv {
  return y.command(
    'eval <dir>',
    "A model's fidelity against the model it came from: KL divergence, top-1 agreement, perplexity",
    (c) =>
      corpusOptions(
        c
          .positional('dir', {
            type: 'string',
            demandOption: true,
            describe: 'Model dir to measure',
          })
          .option('reference', {
            type: 'string',
            demandOption: true,
            describe: 'Model dir it is compared with (usually the fp32 model it was made from)',
          })
          .option('json', {
            type: 'boolean',
            default: false,
            describe: 'Print the figures as JSON',
          }),
      ),
    async (args) => {
      const reference = await openModelDir(args.reference);
      const candidate = await openModelDir(args.dir);
      checkComparable(reference, candidate);
      const stage = stageFrom(args);
      const figures = await withProgress(async (progress) => {
        const run = await referenceRun(reference, {
          file: args.corpus,
          windowTokens: args.window,
          stage,
          progress,
        });
        return modelFidelity(candidate, run, { stage, progress });
      });
      if (args.json) {
        print(
          JSON.stringify({ reference: reference.path, model: candidate.path, ...figures }, null, 2),
        );
        return;
      }
      print(
        renderTable(
          ['figure', 'value'],
          [
            [
              'model',
              `${candidate.manifest.name} (${formatBytes(candidate.manifest.weights.bytes)})`,
            ],
            [
              'reference',
              `${reference.manifest.name} (${formatBytes(reference.manifest.weights.bytes)})`,
            ],
            ['corpus', args.corpus ?? DEFAULT_CORPUS_FILE],
            ...fidelityRows(figures),
          ],
        ),
      );
    },
  );
}

function pruneCommand(y: Argv): Argv {
  return y.command(
    'prune <dir>',
    'Drop the N most redundant layers (Block Influence on calibration text) and report fidelity and speed',
    (c) =>
      corpusOptions(
        c
          .positional('dir', { type: 'string', demandOption: true, describe: 'Model dir' })
          .option('layers', {
            type: 'number',
            demandOption: true,
            describe: 'How many layers to drop',
          })
          .option('out', { type: 'string', demandOption: true, describe: 'Model dir to create' })
          .option('name', {
            type: 'string',
            describe: 'Model name (default: source name + -pruned<N>)',
          })
          .option('speed-rounds', {
            type: 'number',
            default: 5,
            describe:
              'Rounds of 16 decode steps timed on each model, alternating (0 skips the speed test)',
          })
          .option('json', {
            type: 'boolean',
            default: false,
            describe: 'Print the result as JSON',
          }),
      ),
    async (args) => {
      const dir = requireLlamaDir(await openModelDir(args.dir), 'prune');
      const stage = stageFrom(args);
      const { choice, pruned, speeds } = await withProgress(async (progress) => {
        const run = await referenceRun(dir, {
          file: args.corpus,
          windowTokens: args.window,
          stage,
          progress,
        });
        const similarity = await measureLayerSimilarity(dir, run.corpus, { stage, progress });
        const choice = await choosePrune(dir, run.reference, similarity, args.layers, {
          stage,
          progress,
        });
        const pruned = await pruneModel(dir, {
          drop: choice.chosen.drop,
          out: args.out,
          name: args.name,
          progress,
        });
        const speeds =
          args.speedRounds > 0
            ? await measureModelDecodeSpeeds(
                [
                  { label: 'before', dir },
                  { label: 'after', dir: pruned },
                ],
                { rounds: args.speedRounds + 1, stage, progress },
              )
            : [];
        return { choice, pruned, speeds };
      });
      if (args.json) {
        print(
          JSON.stringify(
            { out: pruned.path, ...choice, speeds: speeds.map(({ samples: _, ...s }) => s) },
            null,
            2,
          ),
        );
        return;
      }
      print(
        renderTable(
          ['layer', ...choice.blockInfluence.map((_, l) => String(l))],
          [['Block Influence', ...choice.blockInfluence.map((b) => b.toFixed(4))]],
        ),
      );
      print(
        renderTable(
          ['candidate', 'drop', 'influence', 'KL', 'top-1', 'chosen'],
          choice.candidates.map((c) => [
            c.kind,
            c.drop.join(', '),
            c.influence.toFixed(4),
            c.fidelity.kl.toFixed(4),
            `${(100 * c.fidelity.top1).toFixed(1)}%`,
            c === choice.chosen ? 'yes' : '',
          ]),
        ),
      );
      const rows = [
        ['dropped layers', choice.chosen.drop.join(', ')],
        [
          'weights',
          `${formatBytes(dir.manifest.weights.bytes)} → ${formatBytes(pruned.manifest.weights.bytes)}`,
        ],
        ...fidelityRows(choice.chosen.fidelity),
      ];
      if (speeds.length === 2) {
        const [before, after] = speeds as [(typeof speeds)[0], (typeof speeds)[0]];
        rows.push([
          'decode tokens/s (before → after)',
          `${before.tokensPerSecond.toFixed(1)} → ${after.tokensPerSecond.toFixed(1)} (${(after.tokensPerSecond / before.tokensPerSecond).toFixed(2)}×)`,
        ]);
      }
      print(renderTable(['pruned', pruned.path], rows));
    },
  );
}

export function optimizeCommand(yargs: Argv): Argv {
  return yargs.command(
    'optimize',
    'Quantize, prune and measure models, and search deployments under a fidelity budget',
    (y) =>
      optimizeSearchCommand(pruneCommand(evalCommand(quantizeCommand(y)))).demandCommand(
        1,
        'choose an optimize subcommand: quantize, prune, eval or search',
      ),
  );
}
