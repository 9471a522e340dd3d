/**
 * Every failure SwarmBee reports has its own error class with a stable `code`
 * (`SWARMBEE_ERR_*`). Users match on `code`, never on message text. Errors that
 * cross the wire travel as {@link WireError}: code, message, retryable and stage.
 */

/** The serialisable form of an error, as it crosses the wire or an HTTP response. */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  /** Index of the pipeline stage that raised it, when one did. */
  stage?: number;
  /** MEMORY_SHORT only: what the worker measured, for the coordinator to plan around it. */
  memory?: MemoryShortfall;
}

/** What a worker that refused a stage for memory measured, bytes. */
export interface MemoryShortfall {
  /** The worker that refused. */
  worker: string;
  /** What the stage needs: shard + KV budget + the runtime's allowance. */
  neededBytes: number;
  /**
   * The most weights plus KV budget a plan may give this worker now: its usable memory
   * less the runtime's allowance (and less its own KV budget, when it sets one, since that
   * replaces the budget a plan sends). 0 when nothing fits.
   */
  capacityBytes: number;
}

export interface ErrorOptions {
  cause?: unknown;
  stage?: number;
  /** Overrides the class default: some failures are transient in one context only. */
  retryable?: boolean;
  /** The request field (or header) the error is about, e.g. `messages.0.role`. */
  param?: string;
}

export class SwarmBeeError extends Error {
  static readonly code: string = 'SWARMBEE_ERR_INTERNAL';
  /** Whether repeating the same request later can succeed. */
  static readonly retryable: boolean = false;
  /** HTTP status the API answers with when this error ends a request. */
  static readonly httpStatus: number = 500;

  readonly code: string;
  readonly retryable: boolean;
  readonly stage: number | undefined;
  readonly httpStatus: number;
  readonly param: string | undefined;

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const kind = new.target as typeof SwarmBeeError;
    this.name = kind.name;
    this.code = kind.code;
    this.retryable = options.retryable ?? kind.retryable;
    this.httpStatus = kind.httpStatus;
    this.stage = options.stage;
    this.param = options.param;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.stage !== undefined) wire.stage = this.stage;
    return wire;
  }
}

/** Input a caller supplied is malformed or out of range (an option, a flag, a parameter). */
export class InvalidArgumentError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_INVALID_ARGUMENT';
  static override readonly httpStatus = 400;
}

/** A llama2.c checkpoint is truncated, oversized, or its header is inconsistent. */
export class CheckpointInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CHECKPOINT_INVALID';
}

/** A tokenizer file is missing where one is required. */
export class TokenizerMissingError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TOKENIZER_MISSING';
}

/** A tokenizer file exists but cannot be parsed or does not match the model. */
export class TokenizerInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TOKENIZER_INVALID';
}

/** A token id lies outside the model's vocabulary. */
export class TokenOutOfVocabularyError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB';
  static override readonly httpStatus = 400;
}

/** A prompt (or prompt plus requested tokens) does not fit the model's context window. */
export class ContextOverflowError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CONTEXT_OVERFLOW';
  static override readonly httpStatus = 400;
}

/** A requested split into stages or layer ranges is impossible for the model. */
export class StageLayoutError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_STAGE_LAYOUT';
  static override readonly httpStatus = 400;
}

/** A model dir is missing its manifest or weights, or they disagree. */
export class ModelDirInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MODEL_DIR_INVALID';
}

/** Content does not match its recorded sha256. */
export class HashMismatchError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_HASH_MISMATCH';
}

/** An output location exists and holds something SwarmBee will not overwrite. */
export class OutputExistsError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_OUTPUT_EXISTS';
}

/** A shard graph failed to load or does not match the shape it claims. */
export class ShardInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_SHARD_INVALID';
}

/**
 * One chunk of a shard transfer did not match the sha256 sent with it: the receiver
 * refused it (nothing after its last verified chunk is kept) and the sender re-sends
 * from there. Retryable: a link that flipped a bit once rarely does it twice.
 */
export class ShardChunkCorruptError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_SHARD_CHUNK_CORRUPT';
  static override readonly retryable = true;
}

/**
 * A worker's free memory cannot hold the shard it was offered plus the KV-cache budget
 * it would serve with (the message names the bytes of each and what is short). Refused
 * before any byte is received or loaded.
 */
export class MemoryShortError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MEMORY_SHORT';
  static override readonly httpStatus = 503;
  /** The numbers, when a worker refused a stage (they cross the wire with the error). */
  readonly memory: MemoryShortfall | undefined;

  constructor(message: string, options: ErrorOptions & { memory?: MemoryShortfall } = {}) {
    super(message, options);
    this.memory = options.memory;
  }

  override toWire(): WireError {
    const wire = super.toWire();
    if (this.memory) wire.memory = { ...this.memory };
    return wire;
  }
}

/** The engine's KV-cache byte budget would be exceeded. */
export class KvBudgetExceededError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_KV_BUDGET_EXCEEDED';
  static override readonly retryable = true;
  static override readonly httpStatus = 429;
}

/** A sequence id is not known to the stage that received it. */
export class SequenceUnknownError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_SEQUENCE_UNKNOWN';
  static override readonly httpStatus = 400;
}

/**
 * A sequence asked to rewind to a position whose sliding-window past its stage no
 * longer holds: a windowed layer keeps a ring of W slots, so positions older than
 * the newest W are overwritten. Replay it from position 0.
 */
export class KvHistoryLostError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_KV_HISTORY_LOST';
  static override readonly httpStatus = 400;
}

/** onnxruntime failed while running a forward pass or creating a session. */
export class EngineFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ENGINE_FAILED';
}

/** The engine was used after it was closed, or before it was ready. */
export class EngineClosedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ENGINE_CLOSED';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** The requested onnxruntime execution provider is not in this build of onnxruntime-node. */
export class ExecutionProviderUnavailableError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_EXECUTION_PROVIDER_UNAVAILABLE';
}

/** An operation was cancelled through its AbortSignal, or timed out. */
export class AbortedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ABORTED';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/**
 * A step did not finish within its deadline: a reply that did not come, or a transfer
 * that made no progress for too long. Retryable: the next attempt may meet a faster peer.
 */
export class TimeoutError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TIMEOUT';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** A frame is not one well-formed msgpack message: truncated, trailing bytes, not a map, or a text frame. */
export class FrameInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_FRAME_INVALID';
}

/** A frame is larger than the receiver accepts (`maxFrameBytes`); WebSocket close code 1009. */
export class FrameTooLargeError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_FRAME_TOO_LARGE';
  static override readonly httpStatus = 413;
}

/** A message's `type` is not one this connection understands. */
export class MessageTypeUnknownError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MESSAGE_TYPE_UNKNOWN';
}

/** A message's fields do not match the schema of its type. */
export class MessageSchemaError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MESSAGE_SCHEMA';
}

/** The peer speaks a different wire protocol version. */
export class ProtocolVersionError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PROTOCOL_VERSION';
}

/** Tensor bytes do not match their dtype and dims, or the dtype is not the one expected. */
export class TensorInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TENSOR_INVALID';
}

/** Sending would exceed a channel's queued-bytes limit; wait for `drain` and retry. */
export class SendQueueFullError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_SEND_QUEUE_FULL';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** The peer went silent: no pong (or any other byte) within the heartbeat timeout. */
export class PeerTimeoutError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PEER_TIMEOUT';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** A connection's authentication handshake did not finish in time. */
export class HandshakeTimeoutError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_HANDSHAKE_TIMEOUT';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** A peer could not prove it holds the cluster token, or its role is not accepted. */
export class AuthFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_AUTH_FAILED';
  static override readonly httpStatus = 401;
}

/**
 * A worker asked to join under a name another connected (and answering) worker holds.
 * Not retryable: the same name will keep being refused while that worker runs.
 */
export class WorkerNameTakenError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_WORKER_NAME_TAKEN';
  static override readonly httpStatus = 409;
}

/** A connection could not be opened: refused, unreachable, or the TLS handshake failed. */
export class ConnectFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CONNECT_FAILED';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** A server could not start listening: the address is in use or not available. */
export class ListenFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_LISTEN_FAILED';
}

/** The channel is closed (or closed while waiting): nothing more can be sent or received on it. */
export class ChannelClosedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CHANNEL_CLOSED';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/**
 * A member of a tensor-parallel group is gone (its link closed, or it left): the group's
 * pending and later sums fail until the group is formed again. Names the stage and member.
 */
export class GroupMemberLostError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_GROUP_MEMBER_LOST';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/**
 * An all-reduce part that does not belong to the sum in progress (another group, call,
 * round or length, or from a member that should not send it): the members are out of step,
 * so the part is refused, never summed, and the group must be formed again.
 */
export class AllReducePartMismatchError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ALLREDUCE_PART_MISMATCH';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** No plan fits: the model does not fit in the devices' memory, or a pinned device is too small. */
export class PlanInfeasibleError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PLAN_INFEASIBLE';
  static override readonly httpStatus = 422;
}

/** A device named in a request (a pin, a link endpoint) is not in the cluster profile. */
export class DeviceUnknownError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_DEVICE_UNKNOWN';
  static override readonly httpStatus = 400;
}

/** A device, link or cluster profile is malformed: a missing link, a bad timing grid. */
export class ProfileInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PROFILE_INVALID';
  static override readonly httpStatus = 400;
}

/**
 * A plan given to deploy (`swarmbee coordinator --plan`) does not fit the model or the
 * cluster: another model's hash, layers not covered once in order, a device named twice, a
 * tensor-parallel split that cannot be made. The message names what is wrong.
 */
export class PlanInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PLAN_INVALID';
  static override readonly httpStatus = 400;
}

/** The exact planner would take too long for this cluster; a heuristic planner can answer. */
export class PlanTooLargeError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PLAN_TOO_LARGE';
  static override readonly httpStatus = 422;
}

/**
 * An ONNX decoder export's layers could not be found: no per-layer past/present IO
 * by a known naming, or no single residual tensor between the layers. The message
 * names what was looked for.
 */
export class OnnxLayersNotFoundError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ONNX_LAYERS_NOT_FOUND';
  static override readonly httpStatus = 400;
}

/** An ONNX graph uses something the splitter or the decoder engine cannot handle (named in the message). */
export class OnnxGraphUnsupportedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ONNX_GRAPH_UNSUPPORTED';
  static override readonly httpStatus = 400;
}

const byCode = new Map<string, typeof SwarmBeeError>();

/** Registers error classes so {@link fromWire} can rebuild them; packages register their own. */
export function registerErrors(...kinds: (typeof SwarmBeeError)[]): void {
  for (const kind of kinds) byCode.set(kind.code, kind);
}

registerErrors(
  SwarmBeeError,
  InvalidArgumentError,
  CheckpointInvalidError,
  TokenizerMissingError,
  TokenizerInvalidError,
  TokenOutOfVocabularyError,
  ContextOverflowError,
  StageLayoutError,
  ModelDirInvalidError,
  HashMismatchError,
  OutputExistsError,
  ShardInvalidError,
  ShardChunkCorruptError,
  MemoryShortError,
  KvBudgetExceededError,
  SequenceUnknownError,
  KvHistoryLostError,
  EngineFailedError,
  EngineClosedError,
  ExecutionProviderUnavailableError,
  AbortedError,
  TimeoutError,
  FrameInvalidError,
  FrameTooLargeError,
  MessageTypeUnknownError,
  MessageSchemaError,
  ProtocolVersionError,
  TensorInvalidError,
  SendQueueFullError,
  PeerTimeoutError,
  HandshakeTimeoutError,
  AuthFailedError,
  WorkerNameTakenError,
  ConnectFailedError,
  ListenFailedError,
  ChannelClosedError,
  GroupMemberLostError,
  AllReducePartMismatchError,
  PlanInfeasibleError,
  PlanInvalidError,
  DeviceUnknownError,
  ProfileInvalidError,
  PlanTooLargeError,
  OnnxLayersNotFoundError,
  OnnxGraphUnsupportedError,
);

/** Rebuilds an error received over the wire as the matching class (the base class if unknown). */
export function fromWire(wire: WireError, extra: { param?: string } = {}): SwarmBeeError {
  const kind = byCode.get(wire.code);
  const options: ErrorOptions = { retryable: wire.retryable };
  if (wire.stage !== undefined) options.stage = wire.stage;
  if (extra.param !== undefined) options.param = extra.param;
  if (kind === MemoryShortError && wire.memory)
    return new MemoryShortError(wire.message, { ...options, memory: wire.memory });
  if (kind) return new kind(wire.message, options);
  const error = new SwarmBeeError(wire.message, options);
  (error as { code: string }).code = wire.code;
  return error;
}

/** Wraps anything thrown into a SwarmBeeError, keeping coded errors as they are. */
export function asSwarmBeeError(error: unknown, stage?: number): SwarmBeeError {
  if (error instanceof SwarmBeeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const options: ErrorOptions = { cause: error };
  if (stage !== undefined) options.stage = stage;
  return new SwarmBeeError(message, options);
}
