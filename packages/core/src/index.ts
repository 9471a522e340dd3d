/**
 * @swarmbee/core — the types and errors every SwarmBee package shares. No I/O.
 *
 * @example
 * ```ts
 * import { TokenOutOfVocabularyError } from '@swarmbee/core';
 * try { ... } catch (e) { if (e.code === TokenOutOfVocabularyError.code) ... }
 * ```
 */
export { type AllReduce, sumInOrder } from './all-reduce.js';
export { abortError, isTimeout, ProgressDeadline, settleWithin, stepSignal } from './deadlines.js';
export {
  headDim,
  KV_DTYPE_BYTES,
  type KvDtype,
  kvBytesPerTokenPerLayer,
  type LayerAttention,
  type LlamaConfig,
  layerRope,
  layerWindow,
  type MlpActivation,
  type RopeScaling,
  type RopeSpec,
  STORIES110M_SHAPE,
} from './decoder-config.js';
export {
  AbortedError,
  AllReducePartMismatchError,
  AuthFailedError,
  asSwarmBeeError,
  ChannelClosedError,
  CheckpointInvalidError,
  ConnectFailedError,
  ContextOverflowError,
  DeviceUnknownError,
  EngineClosedError,
  EngineFailedError,
  type ErrorOptions,
  ExecutionProviderUnavailableError,
  FrameInvalidError,
  FrameTooLargeError,
  fromWire,
  GroupMemberLostError,
  HandshakeTimeoutError,
  HashMismatchError,
  InvalidArgumentError,
  KvBudgetExceededError,
  KvHistoryLostError,
  ListenFailedError,
  MemoryShortError,
  type MemoryShortfall,
  MessageSchemaError,
  MessageTypeUnknownError,
  ModelDirInvalidError,
  OnnxGraphUnsupportedError,
  OnnxLayersNotFoundError,
  OutputExistsError,
  PeerTimeoutError,
  PlanInfeasibleError,
  PlanInvalidError,
  PlanTooLargeError,
  ProfileInvalidError,
  ProtocolVersionError,
  SendQueueFullError,
  SequenceUnknownError,
  ShardChunkCorruptError,
  ShardInvalidError,
  StageLayoutError,
  SwarmBeeError,
  TensorInvalidError,
  TimeoutError,
  TokenizerInvalidError,
  TokenizerMissingError,
  TokenOutOfVocabularyError,
  type WireError,
  WorkerNameTakenError,
} from './errors.js';
export {
  DEFAULT_MAX_BATCH_ROWS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_REPLAYS,
  DEFAULT_PREFILL_CHUNK_TOKENS,
} from './generation-defaults.js';
export type {
  GgmlTypeName,
  GgufConversion,
  GgufMetadataValue,
  GgufSource,
  GgufTensorOrigin,
  GgufTensorPart,
  RequantizationError,
} from './gguf.js';
export { arenaCapacity } from './kv-capacity.js';
export {
  type ChatTemplateRef,
  type HfTokenizerRef,
  type LayerCost,
  type LayerPrecision,
  type Llama2cTokenizerRef,
  type LlamaManifest,
  layerKvBytes,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  type ModelDerivation,
  type ModelDerivationStep,
  type ModelManifest,
  type ModelSource,
  type TokenizerRef,
  WEIGHT_ALIGNMENT_BYTES,
  type WeightDtype,
  type WeightQuantization,
  type WeightTensor,
} from './manifest.js';
export {
  ChatTemplateInvalidError,
  ChatTemplateRenderError,
  DiskSpaceError,
  DownloadChecksumError,
  DownloadFailedError,
  DownloadNotFoundError,
  GgufInvalidError,
  GgufTensorTypeUnsupportedError,
  HfCheckpointInvalidError,
  ModelUnsupportedError,
  NetworkUnavailableError,
  SafetensorsInvalidError,
} from './model-errors.js';
export {
  DECODER_DTYPE_BYTES,
  type DecoderFloatDtype,
  type DecoderIndexDtype,
  ONNX_EXTERNAL_MIN_BYTES,
  type OnnxAttentionBias,
  type OnnxCutReplay,
  type OnnxDecoderConfig,
  type OnnxDecoderLayout,
  type OnnxDecoderManifest,
  type OnnxDecoderStageIo,
  type OnnxIoTensor,
  type OnnxKvLayout,
  type OnnxLayerCut,
  type OnnxModelSource,
  type OnnxWeightDtype,
  type OnnxWeightTensor,
} from './onnx-decoder.js';
export {
  CorpusInvalidError,
  ModelMismatchError,
  PruneInvalidError,
  QuantizationUnsupportedError,
} from './optimize-errors.js';
export type { Plan, StagePlan, TensorStagePlan } from './plan.js';
export { stageDevices } from './plan.js';
export { installFaultHandlers, processFaults } from './process-faults.js';
export {
  ACTIVATION_BYTES_PER_ELEMENT,
  type ClusterProfile,
  COORDINATOR_NODE,
  type CoordinatorTiming,
  type DecodeTimingGrid,
  type DeviceProfile,
  type DeviceRuntime,
  type DeviceTiming,
  FRAME_OVERHEAD_BYTES,
  gridAtRisk,
  type HeadTiming,
  type LinkProfile,
  llamaTensorShape,
  type ModelSummary,
  modelSummaryFromManifest,
  type OpTiming,
  type PrefillTimingGrid,
  type RuntimeVersions,
  type TensorShape,
  type TimingRisk,
  TOKEN_WIRE_BYTES,
} from './profile.js';
export { DEFAULT_SAMPLING, type SamplingParams, validateSampling } from './sampling.js';
export {
  ClusterUnavailableError,
  ExpectationFailedError,
  HeadersTooLargeError,
  MethodNotAllowedError,
  ModelNotFoundError,
  NotFoundError,
  QueueFullError,
  RequestTimeoutError,
  RequestTooLargeError,
  TokenizerFailedError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './service-errors.js';
export type { StageEvent, StageTimelineEntry } from './stage-timeline.js';
export { IllegalStateError, StateMachine, type StateTransitions } from './state-machine.js';
export { DTYPE_BYTES, elementCount, type TensorData, type TensorDtype } from './tensor.js';
export { TensorSplitError } from './tensor-parallel-errors.js';
export {
  apportion,
  dealtCounts,
  TENSOR_COLUMN_GRANULARITY,
  type TensorShare,
  tensorShares,
} from './tensor-shares.js';
export {
  AdapterBaseMismatchError,
  AdapterInvalidError,
  AdapterUnsupportedError,
  TrainingBusyError,
  TrainingCheckpointInvalidError,
  TrainingDataInvalidError,
  TrainingDivergedError,
} from './train-errors.js';
export { SWARMBEE_VERSION } from './version.js';
