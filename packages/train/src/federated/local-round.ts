/**
 * A data owner's part of a federated round: the round's adapter trained on the owner's
 * own data for the given steps, in this process (one stage), at a constant learning rate
 * (the schedule is the coordinator's, across rounds). The loss on the owner's first
 * records before and after the steps says what the round bought. The data never leaves
 * this function: only the adapter and a few numbers do.
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from '@swarmbee/core';
import { TrainingPipeline } from '@swarmbee/engine';
import {
  type ActivationPolicy,
  checkAdapterBase,
  type LlamaModelDir,
  type LoraAdapter,
  loadTokenizer,
} from '@swarmbee/model';
import { DataOrder, toMicroBatches } from '../data-order.js';
import { readTrainingData } from '../dataset.js';
import { onPrunedLayers, onWholeLayers, prunedForRound } from './pruned-round.js';

/** Records the loss before and after a round is measured on (the owner's first ones). */
export const ROUND_PROBE_RECORDS = 16;

export interface LocalRoundSettings {
  steps: number;
  learningRate: number;
  microBatchSize: number;
  accumulation: number;
  seqLen: number;
  truncate: boolean;
  /** The round's data order is seeded with seed + round. */
  seed: number;
  weightDecay: number;
  maxGradNorm: number;
  /** FedProx's μ; 0 trains as FedAvg does. */
  proximalMu: number;
  activations: ActivationPolicy;
  /** onnxruntime intra-op threads. Default: every core. */
  threads?: number;
  /**
   * Train with this many layers pruned (the least influential; see pruned-round.ts); their
   * adapters stay out of the update. Default 0.
   */
  pruneLayers?: number;
}

export interface LocalRoundResult {
  adapter: LoraAdapter;
  examples: number;
  tokens: number;
  lossBefore: number;
  lossAfter: number;
  trainMs: number;
}

export async function trainLocalRound(run: {
  model: LlamaModelDir;
  /** The owner's JSONL training data. */
  data: string;
  adapter: LoraAdapter;
  round: number;
  settings: LocalRoundSettings;
  /** Where pruned models are kept between rounds (with `pruneLayers`). */
  cacheDir?: string;
}): Promise<LocalRoundResult> {
  const { settings } = run;
  const started = performance.now();
  checkAdapterBase(run.adapter, run.model.manifest);
  const prune = settings.pruneLayers ?? 0;
  if (prune > 0 && run.cacheDir === undefined)
    throw new InvalidArgumentError(
      'a round with pruned layers needs a cache dir for the pruned model',
    );
  const pruned = prune > 0 ? await prunedForRound(run.model, prune, run.cacheDir!) : undefined;
  const model = pruned?.model ?? run.model;
  const adapter = pruned ? onPrunedLayers(run.adapter, pruned.kept) : run.adapter;
  const tokenizer = await loadTokenizer(model);
  const examples = await readTrainingData(run.data, {
    tokenizer,
    seqLen: settings.seqLen,
    truncate: settings.truncate,
  });
  const order = new DataOrder(
    examples,
    settings.microBatchSize * settings.accumulation,
    settings.seed + run.round,
  );
  const probe = toMicroBatches(examples.slice(0, ROUND_PROBE_RECORDS), settings.microBatchSize);
  const pipeline = await TrainingPipeline.local(model, adapter, {
    stages: 1,
    activations: settings.activations,
    stage: {
      intraOpThreads: settings.threads ?? availableParallelism(),
      // The owner's worker keeps its control link alive meanwhile: no spinning against it.
      allowSpinning: false,
      optimizer: { weightDecay: settings.weightDecay, proximalMu: settings.proximalMu },
    },
  });
  try {
    const meanLoss = async () => {
      const { nll, targetTokens } = await pipeline.evaluate(probe);
      return nll / targetTokens;
    };
    const lossBefore = await meanLoss();
    let tokens = 0;
    for (let step = 0; step < settings.steps; step++) {
      const done = await pipeline.step(toMicroBatches(order.step(step), settings.microBatchSize), {
        learningRate: settings.learningRate,
        maxGradNorm: settings.maxGradNorm,
      });
      tokens += done.tokens;
    }
    const lossAfter = await meanLoss();
    const trained = { ...adapter, tensors: await pipeline.adapterTensors() };
    return {
      adapter: pruned ? onWholeLayers(trained, pruned.kept, run.adapter.baseModelHash) : trained,
      examples: examples.length,
      tokens,
      lossBefore,
      lossAfter,
      trainMs: performance.now() - started,
    };
  } finally {
    await pipeline.close();
  }
}
