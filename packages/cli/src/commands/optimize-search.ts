/**
 * `swarmbee optimize search`: GA, PSO and a GA-PSO hybrid search which layers to drop and
 * which precision each layer keeps, with the planner's DP choosing the partition of every
 * candidate, to minimize time per token (or maximize throughput) under a KL budget. The
 * fidelity of a candidate is predicted from per-layer measurements on the corpus (cached),
 * and the best candidates are then measured directly to show the prediction's error.
 */
import { readFile } from 'node:fs/promises';
import {
  type ClusterProfile,
  InvalidArgumentError,
  ModelMismatchError,
  ProfileInvalidError,
  QuantizationUnsupportedError,
} from '@swarmbee/core';
import {
  DEFAULT_QUANT_ACTIVATIONS,
  DEFAULT_QUANT_BLOCK_SIZE,
  layerPrecisions,
  requireLlamaDir,
} from '@swarmbee/model';
import {
  byteTimeScales,
  checkPredictions,
  measureLayerFidelity,
  measureTimeScales,
  type PrecisionTimeScales,
  quantizedLayerBytes,
  referenceRun,
} from '@swarmbee/optimize';
import {
  DEFAULT_SEARCH_EVALUATIONS_PER_ALGORITHM,
  type DeploymentCandidate,
  type DeploymentSearchResult,
  type LayerChoice,
  type Objective,
  type QuantizedPrecision,
  searchDeployments,
} from '@swarmbee/planner';
import type { Argv } from 'yargs';
import { resolveModel } from '../model-arg.js';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';
import { corpusOptions, stageFrom } from './optimize.js';

const print = (text: string) => process.stdout.write(`${text}\n`);

function parsePrecisions(text: string): QuantizedPrecision[] {
  const out = text.split(',').map((p) => p.trim());
  for (const p of out) {
    if (p !== 'int8' && p !== 'int4')
      throw new InvalidArgumentError(`--precisions: "${p}" is not int8 or int4`);
  }
  return out as QuantizedPrecision[];
}

async function readProfile(path: string): Promise<ClusterProfile> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ClusterProfile;
  } catch (error) {
    throw new ProfileInvalidError(
      `cannot read the profile ${path}: ${(error as Error).message} (write one with swarmbee profile --out FILE)`,
      { cause: error },
    );
  }
}

function stagesText(c: DeploymentCandidate): string {
  // Stage layers are numbered in the configured (pruned) model; map them back to precisions.
  const kept = c.config.flatMap((choice, layer) => (choice === 'drop' ? [] : [{ choice, layer }]));
  return c.plan.stages
    .map((s) => {
      const layers = kept.slice(s.layerStart, s.layerEnd);
      const kinds = [...new Set(layers.map((l) => l.choice))].join('+');
      return `${s.device}: ${layers[0]!.layer}-${layers.at(-1)!.layer} ${kinds}`;
    })
    .join('; ');
}

function resultRows(result: DeploymentSearchResult): (string | number)[][] {
  const base = result.baseline;
  const rows: (string | number)[][] = [];
  const row = (label: string, c: DeploymentCandidate | undefined, note = '') => {
    if (!c) {
      rows.push([label, note || 'nothing fits within the budget', '', '', '', '', '', '', '']);
      return;
    }
    const gain =
      base === undefined
        ? 'fp32 does not fit'
        : result.objective === 'latency'
          ? `${(base.plan.tpotMs / c.plan.tpotMs).toFixed(2)}×`
          : `${(c.plan.tokensPerS / base.plan.tokensPerS).toFixed(2)}×`;
    rows.push([
      label,
      c.description,
      stagesText(c),
      c.fidelity.kl.toFixed(4),
      `${(100 * c.fidelity.top1).toFixed(1)}%`,
      formatBytes(c.layerBytes),
      c.plan.tpotMs.toFixed(2),
      c.plan.tokensPerS.toFixed(1),
      gain,
    ]);
  };
  row('fp32 DP', base, result.baselineError ? `does not fit: ${result.baselineError.message}` : '');
  for (const run of result.runs) row(`${run.algorithm} (${run.planned} planned)`, run.best);
  return rows;
}

export function optimizeSearchCommand(y: Argv): Argv {
  return y.command(
    'search',
    'Search layer drops, per-layer precision and the partition under a KL budget (GA, PSO, hybrid; DP inside)',
    (c) =>
      corpusOptions(
        c
          .option('profile', {
            type: 'string',
            demandOption: true,
            describe: 'Cluster profile JSON of the fp32 model (swarmbee profile --out FILE)',
          })
          .option('budget', {
            type: 'number',
            demandOption: true,
            describe: 'Largest predicted mean KL divergence from the fp32 model, nats per token',
          })
          .option('objective', {
            choices: ['latency', 'throughput'] as const,
            default: 'latency' as const,
            describe: 'latency: least time per token; throughput: most tokens/s with micro-batches',
          })
          .option('model', {
            type: 'string',
            describe:
              'The fp32 model dir the profile was measured for (default: the embedded model)',
          })
          .option('seed', {
            type: 'number',
            default: 1,
            describe: 'Seed of the searches: same seed, same result',
          })
          .option('min-top1', {
            type: 'number',
            default: 0,
            describe: 'Smallest predicted top-1 agreement with fp32, 0..1',
          })
          .option('precisions', {
            type: 'string',
            default: 'int8,int4',
            describe: 'Precisions a layer may take besides fp32',
          })
          .option('drop', {
            type: 'boolean',
            default: true,
            describe: 'Let the search drop layers (--no-drop: never)',
          })
          .option('max-drop', {
            type: 'number',
            describe: 'Most layers dropped (default: a quarter of them)',
          })
          .option('evaluations', {
            type: 'number',
            default: DEFAULT_SEARCH_EVALUATIONS_PER_ALGORITHM,
            describe: 'Fitness evaluations per algorithm',
          })
          .option('timing', {
            choices: ['measure', 'bytes'] as const,
            default: 'measure' as const,
            describe:
              "Quantized layers' time as a share of fp32: measure one layer here, or assume it follows the bytes",
          })
          .option('block-size', {
            type: 'number',
            default: DEFAULT_QUANT_BLOCK_SIZE,
            describe: 'Quantization block',
          })
          .option('activations', {
            choices: ['int8', 'float32'] as const,
            default: DEFAULT_QUANT_ACTIVATIONS,
            describe: 'How quantized matmuls treat activations (see optimize quantize)',
          })
          .option('context', {
            type: 'number',
            describe: "Context tokens the KV cache is sized for (default: the model's)",
          })
          .option('validate', {
            type: 'number',
            default: 3,
            describe:
              'Best configurations to measure directly against their predicted fidelity (0: none)',
          })
          .option('json', {
            type: 'boolean',
            default: false,
            describe: 'Print the result as JSON',
          }),
      ),
    async (args) => {
      const profile = await readProfile(args.profile);
      const model = requireLlamaDir(
        await resolveModel(args.model, (line) => process.stderr.write(`${line}\n`)),
        'optimize search',
      );
      if (profile.model?.modelHash !== model.manifest.modelHash) {
        throw new ModelMismatchError(
          `the profile was measured for ${profile.model?.name ?? 'another model'} (hash ${String(profile.model?.modelHash).slice(0, 12)}), not ${model.manifest.name} (${model.manifest.modelHash.slice(0, 12)}); pass the model it was measured for with --model`,
        );
      }
      if (layerPrecisions(model).some((p) => p !== 'fp32')) {
        throw new QuantizationUnsupportedError(
          `${model.manifest.name} already has quantized layers; search from the fp32 model it was made from`,
        );
      }
      const precisions = parsePrecisions(args.precisions);
      const choices: LayerChoice[] = [
        'fp32',
        ...precisions,
        ...(args.drop ? (['drop'] as const) : []),
      ];
      const stage = stageFrom(args);
      const { result, validations } = await withProgress(async (progress) => {
        const run = await referenceRun(model, {
          file: args.corpus,
          windowTokens: args.window,
          stage,
          progress,
        });
        const table = await measureLayerFidelity(model, run.reference, {
          precisions,
          drops: args.drop,
          blockSize: args.blockSize,
          activations: args.activations,
          stage,
          progress,
        });
        const layerBytes = quantizedLayerBytes(model, args.blockSize);
        const timeScale: PrecisionTimeScales =
          args.timing === 'measure' && model.manifest.config.nLayers >= 3
            ? await measureTimeScales(model, { blockSize: args.blockSize, stage, progress })
            : byteTimeScales(model.manifest.layers[0]!.paramBytes, {
                int8: layerBytes.int8[0]!,
                int4: layerBytes.int4[0]!,
              });
        const result = searchDeployments(
          {
            cluster: profile,
            workload: args.context === undefined ? undefined : { contextTokens: args.context },
            fidelity: table,
            costs: { layerBytes, timeScale },
          },
          {
            objective: args.objective as Objective,
            klBudget: args.budget,
            minTop1: args.minTop1,
            choices,
            maxDropped: args.maxDrop,
            seed: args.seed,
            evaluations: args.evaluations,
          },
        );
        const distinct = new Map<string, LayerChoice[]>();
        for (const { best } of result.runs) {
          if (best?.config.some((c) => c !== 'fp32')) distinct.set(best.key, best.config);
        }
        const configs = [...distinct.values()].slice(0, Math.max(0, args.validate));
        const validations = await checkPredictions(model, table, run, configs, { stage, progress });
        return {
          result: { ...result, timeScale, referencePerplexity: run.reference.perplexity },
          validations,
        };
      });
      if (args.json) {
        print(JSON.stringify({ ...result, validations }, null, 2));
        return;
      }
      print(
        `${result.objective === 'latency' ? 'least time per token' : 'most tokens/s'} within KL ${result.klBudget} nats/token` +
          `${result.minTop1 > 0 ? ` and top-1 >= ${result.minTop1}` : ''}, seed ${args.seed}; ` +
          `quantized layer time vs fp32 (${args.timing}): int8 ${result.timeScale.int8.decode.toFixed(2)}, int4 ${result.timeScale.int4.decode.toFixed(2)}`,
      );
      print(
        renderTable(
          [
            'search',
            'configuration',
            'stages (device: layers precision)',
            'KL',
            'top-1',
            'layer bytes',
            'TPOT ms',
            'tok/s',
            'vs fp32',
          ],
          resultRows(result),
        ),
      );
      if (validations.length > 0) {
        print('predicted fidelity (per-layer model) against direct measurement on the corpus:');
        print(
          renderTable(
            [
              'configuration',
              'KL predicted',
              'KL measured',
              'error',
              'top-1 predicted',
              'top-1 measured',
            ],
            validations.map((v) => [
              v.description,
              v.predicted.kl.toFixed(4),
              v.measured.kl.toFixed(4),
              `${(100 * v.klRelativeError).toFixed(0)}%`,
              `${(100 * v.predicted.top1).toFixed(1)}%`,
              `${(100 * v.measured.top1).toFixed(1)}%`,
            ]),
          ),
        );
      }
    },
  );
}
