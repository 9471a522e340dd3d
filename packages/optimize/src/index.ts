/**
 * @swarmbee/optimize — what `swarmbee optimize` does besides writing model dirs (which
 * @swarmbee/model does: quantizeModel, pruneModel): measure a model's fidelity against the
 * model it came from on a corpus (KL divergence, top-1 agreement, perplexity), find the
 * layers that can go (Block Influence on calibration text), predict a deployment's fidelity
 * from per-layer measurements and its speed from measured precision time scales, and time
 * decode speed fairly on a noisy machine. The deployment search itself is the planner's
 * (`searchDeployments`); this package feeds it measurements.
 *
 * @example
 * ```ts
 * import { openModelDir } from '@swarmbee/model';
 * import { modelFidelity, referenceRun } from '@swarmbee/optimize';
 * const reference = await openModelDir('models/s260k');
 * const run = await referenceRun(reference); // the bundled corpus, teacher forced
 * const figures = await modelFidelity(await openModelDir('models/s260k-int8'), run);
 * console.log(figures.kl, figures.top1);
 * ```
 */
export {
  blockInfluence,
  type LayerSimilarity,
  measureLayerSimilarity,
  runInfluence,
} from './calibration.js';
export {
  type Corpus,
  DEFAULT_CORPUS_FILE,
  DEFAULT_WINDOW_TOKENS,
  type LoadCorpusOptions,
  loadCorpus,
  MIN_CORPUS_PREDICTIONS,
} from './corpus.js';
export {
  type DecodeSpeed,
  type DecodeSpeedOptions,
  measureDecodeSpeeds,
  measureModelDecodeSpeeds,
  timeDecode,
} from './decode-speed.js';
export { type FidelityFigures, ReferenceDistribution } from './fidelity.js';
export {
  LAYER_FIDELITY_FORMAT,
  LAYER_FIDELITY_VERSION,
  type LayerFidelityOptions,
  type LayerFidelityReport,
  measureLayerFidelity,
} from './layer-fidelity.js';
export {
  byteTimeScales,
  measureTimeScales,
  type PrecisionTimeScales,
  quantizedLayerBytes,
} from './precision-timing.js';
export { choosePrune, type PruneCandidate, type PruneChoice } from './prune-choice.js';
export { quantile, type Summary, summarize } from './stats.js';
export {
  checkComparable,
  checkPredictions,
  configVariant,
  modelFidelity,
  type PredictionCheck,
  type ReferenceRun,
  referenceRun,
  variantFidelity,
} from './workflows.js';
