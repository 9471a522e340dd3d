/**
 * @swarmbee/engine — one stage's inference over onnxruntime-node, off the main
 * thread: session, KV cache and sampling; plus in-process pipelines and run.c-style
 * generation on top of them.
 *
 * @example
 * ```ts
 * import { openModelDir, loadTokenizer } from '@swarmbee/model';
 * import { LocalPipeline, generate } from '@swarmbee/engine';
 * const dir = await openModelDir('models/s260k');
 * const pipeline = await LocalPipeline.create(dir, { stages: 2 });
 * const tokenizer = await loadTokenizer(dir);
 * const [out] = await generate(pipeline, [{ promptIds: tokenizer.encode('Once upon a time'), steps: 64, sampling: { temperature: 0, topK: 0, topP: 1 } }]);
 * await pipeline.close();
 * ```
 */

export {
  checkSpeedFactor,
  DeviceEmulation,
  EmulatedStage,
  paceSegments,
  type SegmentEmulation,
  type SegmentPacer,
  type SpeedBasis,
} from './device-emulation.js';
export {
  type BatchSentEvent,
  type BatchSentRow,
  ENGINE_EVENTS,
  publishBatch,
} from './events.js';
export {
  availableExecutionProviders,
  DEFAULT_EXECUTION_PROVIDER,
  executionProviders,
} from './execution-provider.js';
export {
  type GenerateOptions,
  type GenerateRequest,
  type GenerateResult,
  generate,
} from './generate.js';
export { arenaCapacity } from './kv-cache.js';
export { LayerStateChain } from './layer-states.js';
export { LocalPipeline, type LocalPipelineOptions } from './local-pipeline.js';
export type { Pipeline, PipelineInfo, PipelineResult, PipelineStep } from './pipeline.js';
export { PortAllReduce, type PortGroup, serveAllReduce } from './port-all-reduce.js';
export { type AdmissionLimits, KvAdmission } from './scheduler/admission.js';
export {
  type BatchTransport,
  type MicroBatch,
  MicroBatcher,
  type MicroBatchResult,
  type Sequence,
  type SequenceRequest,
  type SequenceResult,
} from './scheduler/micro-batch.js';
export { pipelineTransport } from './scheduler/pipeline-transport.js';
export { type AttachOptions, Scheduler, type SchedulerOptions } from './scheduler/scheduler.js';
export {
  type AllReduceWait,
  createSharedGroup,
  DEFAULT_ALL_REDUCE_WAIT,
  DEFAULT_SLOT_ELEMENTS,
  SharedAllReduce,
  type SharedGroup,
} from './shared-all-reduce.js';
export type {
  BatchRow,
  StageBatch,
  StageEngine,
  StageInfo,
  StageLimits,
  StageOptions,
  StageOutput,
  StageStats,
  StageTiming,
} from './stage-engine.js';
export { DEFAULT_KV_BUDGET_BYTES, DEFAULT_SPIN_DURATION_US } from './stage-engine.js';
export { createStageEngine } from './stage-factory.js';
export { stageSessionOptions } from './stage-session.js';
export { type TensorGroupOptions, TensorGroupStage } from './tensor-group-stage.js';
export { type MemberTiming, TensorMemberStage } from './tensor-member-stage.js';
export { ThreadedStage } from './threaded-stage.js';
export {
  type AdamWMoments,
  type AdamWOptions,
  LEARNING_RATE_SCHEDULES,
  type LearningRateSchedule,
  learningRateFactor,
  type ScheduleOptions,
} from './train/adamw.js';
export {
  DEFAULT_PIPELINE_SCHEDULE,
  PIPELINE_SCHEDULES,
  type PipelineScheduleKind,
  type ScheduleOp,
} from './train/pipeline-schedule.js';
export { ThreadedTrainingStage } from './train/threaded-training-stage.js';
export type { TrainingMicroBatch } from './train/training-batch.js';
export {
  type LocalTrainingOptions,
  type StepMicroBatch,
  type StepOptions,
  type StepResult,
  TrainingPipeline,
} from './train/training-pipeline.js';
export type {
  TrainingBackward,
  TrainingForward,
  TrainingStage,
  TrainingStageInfo,
  TrainingStageOptions,
  TrainingStageState,
  TrainingStageStats,
  TrainingUpdate,
} from './train/training-stage.js';
