/**
 * The steps `swarmbee optimize` and the optimize benchmark share: a reference run of the
 * fp32 model over the corpus, fidelity of model dirs and variants against it, and the
 * check of the additive fidelity model against direct measurements.
 */
import { CorpusInvalidError, ModelMismatchError } from '@swarmbee/core';
import type { StageOptions } from '@swarmbee/engine';
import {
  type LlamaModelDir,
  loadTokenizer,
  type ModelDir,
  type ModelVariant,
  type ProgressFn,
  VariantBuilder,
} from '@swarmbee/model';
import {
  type DeploymentConfig,
  describeConfig,
  type FidelityTable,
  type PredictedFidelity,
  predictFidelity,
} from '@swarmbee/planner';
import { type Corpus, type LoadCorpusOptions, loadCorpus } from './corpus.js';
import { type FidelityFigures, ReferenceDistribution } from './fidelity.js';
import { modelPipeline, variantPipeline, withPipeline } from './pipelines.js';

export interface ReferenceRun {
  corpus: Corpus;
  reference: ReferenceDistribution;
}

/** Loads the corpus with the model's tokenizer and runs the reference model over it. */
export async function referenceRun(
  dir: ModelDir,
  options: LoadCorpusOptions & { stage?: StageOptions; progress?: ProgressFn } = {},
): Promise<ReferenceRun> {
  if (!dir.manifest.tokenizer) {
    throw new CorpusInvalidError(
      `${dir.manifest.name} has no tokenizer, so a text corpus cannot be encoded for it`,
    );
  }
  const tokenizer = await loadTokenizer(dir);
  const corpus = await loadCorpus(tokenizer, dir.manifest.config.maxSeqLen, options);
  const reference = await withPipeline(modelPipeline(dir, options.stage), (p) =>
    ReferenceDistribution.measure(p, corpus, options.progress),
  );
  return { corpus, reference };
}

/** Refuses to compare models that do not share a vocabulary and tokenizer. */
export function checkComparable(reference: ModelDir, candidate: ModelDir): void {
  const a = reference.manifest;
  const b = candidate.manifest;
  if (a.config.vocabSize !== b.config.vocabSize) {
    throw new ModelMismatchError(
      `${b.name} has a vocabulary of ${b.config.vocabSize} tokens and ${a.name} ${a.config.vocabSize}: ` +
        'compare a model with the one it was quantized or pruned from',
    );
  }
  if (a.tokenizer && b.tokenizer && a.tokenizer.sha256 !== b.tokenizer.sha256) {
    throw new ModelMismatchError(
      `${b.name} and ${a.name} have different tokenizers: their next-token distributions cannot be compared`,
    );
  }
}

/** Fidelity of a model dir against the reference run. */
export async function modelFidelity(
  dir: ModelDir,
  run: ReferenceRun,
  options: { stage?: StageOptions; progress?: ProgressFn } = {},
): Promise<FidelityFigures> {
  return withPipeline(modelPipeline(dir, options.stage), (p) =>
    run.reference.compare(p, options.progress),
  );
}

/** Fidelity of an in-memory variant of `dir` against the reference run. */
export async function variantFidelity(
  builder: VariantBuilder,
  variant: ModelVariant,
  run: ReferenceRun,
  stage?: StageOptions,
): Promise<FidelityFigures> {
  return withPipeline(variantPipeline(builder, variant, stage), (p) => run.reference.compare(p));
}

/** A deployment configuration as a variant of the fp32 model. */
export function configVariant(config: DeploymentConfig): ModelVariant {
  const precision: Record<number, 'int8' | 'int4'> = {};
  const drop: number[] = [];
  config.forEach((choice, layer) => {
    if (choice === 'drop') drop.push(layer);
    else if (choice !== 'fp32') precision[layer] = choice;
  });
  return { drop, precision };
}

export interface PredictionCheck {
  description: string;
  config: DeploymentConfig;
  predicted: PredictedFidelity;
  measured: FidelityFigures;
  /** (predicted − measured) / measured KL; 0 when both are 0. */
  klRelativeError: number;
  /** predicted − measured top-1 agreement. */
  top1Error: number;
}

/** Measures configurations directly and sets the additive prediction beside each. */
export async function checkPredictions(
  dir: LlamaModelDir,
  table: FidelityTable,
  run: ReferenceRun,
  configs: readonly DeploymentConfig[],
  options: { builder?: VariantBuilder; stage?: StageOptions; progress?: ProgressFn } = {},
): Promise<PredictionCheck[]> {
  const builder = options.builder ?? new VariantBuilder(dir);
  const checks: PredictionCheck[] = [];
  for (const [i, config] of configs.entries()) {
    const predicted = predictFidelity(table, config);
    const measured = await variantFidelity(builder, configVariant(config), run, options.stage);
    checks.push({
      description: describeConfig(config),
      config,
      predicted,
      measured,
      klRelativeError:
        measured.kl > 0 ? (predicted.kl - measured.kl) / measured.kl : predicted.kl > 0 ? 1 : 0,
      top1Error: predicted.top1 - measured.top1,
    });
    options.progress?.({
      phase: 'validate predictions',
      done: i + 1,
      total: configs.length,
      unit: 'steps',
    });
  }
  return checks;
}
