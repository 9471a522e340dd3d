/**
 * @swarmbee/train — LoRA fine-tuning runs: JSONL training data (text and chat records),
 * the order of examples and micro-batches, checkpoints to resume from, and the step
 * loop over an in-process TrainingPipeline of @swarmbee/engine.
 *
 * @example
 * ```ts
 * import { openModelDir, requireLlamaDir } from '@swarmbee/model';
 * import { finetune, FINETUNE_DEFAULTS, defaultWarmupSteps } from '@swarmbee/train';
 * const model = requireLlamaDir(await openModelDir('models/s260k'), 'finetune');
 * const settings = { ...FINETUNE_DEFAULTS, targets: [...FINETUNE_DEFAULTS.targets], warmupSteps: defaultWarmupSteps(100) };
 * await finetune({ model, data: 'stories.jsonl', out: 'adapters/a', checkpointDir: 'adapters/a.ckpt', settings });
 * ```
 */

export {
  federatedAverage,
  type OwnerUpdate,
  truncateRank,
} from './federated/aggregate.js';
export { type FederatedArm, roundRelativeRewards, UcbBandit } from './federated/bandit.js';
export {
  type LocalRoundResult,
  type LocalRoundSettings,
  ROUND_PROBE_RECORDS,
  trainLocalRound,
} from './federated/local-round.js';
export {
  type EvalFigures,
  FINETUNE_CHANNEL,
  type FinetuneEvent,
  type FinetuneResult,
  type FinetuneRun,
  finetune,
  type TrainingExample,
} from './finetune.js';
export {
  defaultWarmupSteps,
  FINETUNE_DEFAULTS,
  type FinetuneSettings,
} from './finetune-options.js';
