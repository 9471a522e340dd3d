/**
 * @swarmbee/coordinator — the worker registry, deployment, the micro-batch
 * scheduler and the OpenAI-compatible HTTP API.
 */
export type { ProfileEvent } from './api/admin.js';
export { API_ERROR_STATUS, type ApiErrorBody } from './api/errors.js';
export type { FinetuneStreamEvent } from './api/finetune.js';
export { type ApiOptions, createApi } from './api/server.js';
export {
  type ApiTarget,
  type EventStreamOptions,
  getJson,
  postEvents,
  postJson,
  type RequestOptions,
} from './api-client.js';
export { Coordinator } from './cluster/coordinator.js';
export type {
  CoordinatorOptions,
  RecoveryEvent,
  ServedAdapter,
} from './cluster/coordinator-options.js';
export {
  COORDINATOR_TRANSITIONS,
  type CoordinatorState,
  CoordinatorStateMachine,
} from './cluster/coordinator-state.js';
export type { DeployedStage } from './cluster/deployer.js';
export { checkGivenPlan, readGivenPlan } from './cluster/given-plan.js';
export type { PlanningOptions } from './cluster/planning.js';
export { DEFAULT_REPLAN_GAIN, DEFAULT_REPLAN_PAYBACK_MS } from './cluster/replan-policy.js';
export { shardDirName } from './cluster/shard-store.js';
// The shard transfer on its own (sendShard, WorkerLink, WorkerRegistry): `@swarmbee/coordinator/transfer`.
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_TRANSFER_STALL_TIMEOUT_MS,
  type TransferOptions,
} from './cluster/shard-transfer.js';
export type { ChatPrompt, CompletionLimits, CompletionRequest } from './completion-request.js';
export {
  ClusterWatch,
  type ClusterWatchSources,
  DEFAULT_EVENT_INTERVAL_MS,
} from './console/cluster-events.js';
export { DEFAULT_MAX_EVENT_STREAMS } from './console/event-routes.js';
export type {
  ClusterEvent,
  FailoverKind,
  MetricsEvent,
  StageRates,
} from './console/feed-types.js';
export {
  type AnnounceOptions,
  announceCoordinator,
  type CoordinatorAnnouncement,
} from './discovery.js';
export {
  DEFAULT_DRIFT_MIN_INTERVAL_MS,
  DEFAULT_DRIFT_THRESHOLD,
  DEFAULT_DRIFT_WINDOWS,
  DRIFT_DIAGNOSTIC,
  type DriftEvent,
  type DriftHooks,
  DriftMonitor,
  type DriftOptions,
} from './drift/drift-monitor.js';
export {
  COORDINATOR_EVENTS,
  type CoordinatorEventMap,
  type CoordinatorEventName,
  type CoordinatorStateEvent,
  type DeployedEvent,
  type ListeningEvent,
  publishCoordinatorEvent,
  type ReplanningEvent,
  type ReplayedEvent,
  type StrayBatchErrorEvent,
  type WorkerJoinedEvent,
  type WorkerLostEvent,
} from './events.js';
export {
  type CompleteOptions,
  type Completion,
  GenerationService,
  type GenerationServiceOptions,
  type ModelInfo,
  type PreparedCompletion,
  type ServiceLimits,
} from './generation-service.js';
export { Metrics, type MetricsSources, type StageMetrics } from './metrics.js';
export { TokenizerPool, type TokenizerPoolOptions } from './prompt/tokenizer-pool.js';
export { type ServedModel, ServedModels } from './served-models.js';
export { TextStream } from './text-stream.js';
