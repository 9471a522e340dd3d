/**
 * @swarmbee/protocol — SwarmBee's wire: typed messages for the control plane
 * (coordinator ↔ worker) and the data plane (stage → stage), one msgpack codec with a
 * schema check on every received frame, tensors as raw little-endian bytes, and
 * authenticated WebSocket channels with backpressure, heartbeats and size limits.
 *
 * @example
 * ```ts
 * import { once } from 'node:events';
 * import { connect, float32Tensor, float32Values, generateClusterToken, listen } from '@swarmbee/protocol';
 *
 * const token = generateClusterToken();
 * // A last stage's data-plane server: answers each forward frame with a greedy token.
 * const server = await listen({ host: '127.0.0.1', port: 0, token }, (channel) => {
 *   if (channel.plane !== 'data') return channel.close(1008, 'data plane only');
 *   channel.on('message', (message) => {
 *     if (message.type !== 'forward' || message.hidden === undefined) return;
 *     const hidden = float32Values(message.hidden); // a view of the frame when aligned
 *     const tokenId = hidden.indexOf(Math.max(...hidden));
 *     channel.send({ type: 'tokens', batchId: message.batchId, rows: [{ seqId: 's1', tokenId }] });
 *   });
 * });
 *
 * const stage = await connect(server.url, { token, role: 'stage', name: 'stage-0' });
 * const reply = once(stage, 'message');
 * stage.send({
 *   type: 'forward',
 *   batchId: 1,
 *   rows: [{ seqId: 's1', start: 0, count: 1, sampling: { temperature: 0, topK: 0, topP: 1 } }],
 *   hidden: float32Tensor(new Float32Array([0.1, 0.2, 0.9, 0.3]), [1, 1, 4]),
 * });
 * const [tokens] = await reply;
 * console.log(JSON.stringify(tokens)); // {"type":"tokens","batchId":1,"rows":[{"seqId":"s1","tokenId":2}]}
 * stage.close();
 * await server.close();
 * ```
 *
 * Errors are `@swarmbee/core` classes with stable codes (`SWARMBEE_ERR_FRAME_INVALID`,
 * `SWARMBEE_ERR_AUTH_FAILED`, …); events go to `node:diagnostics_channel` (see
 * {@link DIAGNOSTICS}), never to the console.
 */
export {
  CLUSTER_TOKEN_BYTES,
  createNonce,
  generateClusterToken,
  type HelloProofInput,
  helloProof,
  proofsMatch,
  welcomeProof,
} from './auth.js';
export {
  Channel,
  type ChannelClose,
  type ChannelEvents,
  type ChannelInit,
  type ChannelState,
  type RequestOptions,
} from './channel.js';
export { type ClientTlsOptions, type ConnectOptions, connect } from './client.js';
export { CLOSE_CODES, closeCodeFor, errorForClose } from './close-codes.js';
export {
  checkMessage,
  type DecodeOptions,
  decode,
  encode,
  encodeParts,
  errorMessageFor,
  SPLIT_FIELD_MIN_BYTES,
  tensorOwnsFrame,
} from './codec.js';
export {
  type AuthFailedDiagnostic,
  type ChannelCloseDiagnostic,
  type ChannelCounters,
  type ChannelOpenDiagnostic,
  DIAGNOSTICS,
  type FrameErrorDiagnostic,
  type PeerInfo,
  type PeerTimeoutDiagnostic,
} from './diagnostics.js';
export {
  ALL_REDUCE_ALGORITHMS,
  type AllReduceAlgorithm,
  checkTensorGroup,
  DataPlaneAllReduce,
  DEFAULT_GROUP_JOIN_TIMEOUT_MS,
  DEFAULT_SUM_TIMEOUT_MS,
  DEFAULT_UNCLAIMED_LINK_MS,
  GROUP_EVENTS,
  GroupHub,
  type GroupJoinedEvent,
  type GroupLeftEvent,
  type GroupMemberLostEvent,
  type GroupMemberOptions,
  type HubMember,
  linkedRanks,
  type TensorGroup,
} from './group/index.js';
export { answerProbe, type LinkMeasurement, measureLink, type ProbeOptions } from './link-probe.js';
export { checkShape, connectShaped, type LinkShape, ShapingProxy } from './link-shaper.js';
export {
  clusterFingerprint,
  MDNS_SERVICE_TYPE,
  MDNS_TXT_VERSION,
  type MdnsOptions,
  mdnsSocketOf,
} from './mdns.js';
export {
  type AllReducePartMessage,
  type ChallengeMessage,
  type ChannelPlane,
  type ControlMessage,
  type DataMessage,
  type DeviceFacts,
  type DrainMessage,
  type ErrorMessage,
  type FedRoundMessage,
  type FedUpdateMessage,
  type ForwardMessage,
  type ForwardRow,
  fromWireArray,
  type GroupJoinMessage,
  type HandshakeMessage,
  type HelloMessage,
  MAX_GROUP_SIZE,
  type Message,
  type MessageOf,
  type MessagePlane,
  type MessageType,
  type PlaneMessage,
  type PlaneOfRole,
  PROTOCOL_VERSION,
  type ProbeMessage,
  type ProbeReplyMessage,
  type ProfileRequestMessage,
  type ProfileResultMessage,
  type RegisteredMessage,
  type RegisterMessage,
  type ReleaseMessage,
  type ReplyTo,
  type RequestMessage,
  type Role,
  type SampledToken,
  type ShardChunkMessage,
  type ShardDoneMessage,
  type ShardFile,
  type ShardNeedMessage,
  type ShardOfferMessage,
  type ShardStoredMessage,
  type StageLimitsMessage,
  type StageLoadMessage,
  type StageReadyMessage,
  type StatsMessage,
  type StatsRequestMessage,
  type StopMessage,
  type TokensMessage,
  type TrainCallMessage,
  type TrainGradMessage,
  type TrainHiddenMessage,
  type TrainingCall,
  type TrainingResult,
  type TrainLoadMessage,
  type TrainReadyMessage,
  type TrainResultMessage,
  toWireArray,
  type WelcomeMessage,
  type WireArray,
  type WireTrainingState,
} from './messages/index.js';
export {
  type ChannelOptions,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  type ResolvedChannelOptions,
} from './options.js';
export {
  type ChannelServer,
  type ListenOptions,
  listen,
  type ServerChannel,
  type ServerTlsOptions,
} from './server.js';
export { MAX_HANDSHAKE_BYTES } from './server-handshake.js';
export {
  checkTensor,
  float16Bits,
  float16Tensor,
  float32Tensor,
  float32Values,
  int32Tensor,
  int32Values,
  int64Tensor,
  int64Values,
  type TensorArrays,
} from './tensor.js';
export { TENSOR_ALIGN_BYTES, TENSOR_FRAME_MARKER } from './tensor-frame.js';
export {
  arraysFromWire,
  arraysToWire,
  batchFromWire,
  batchToWire,
  graphsToWire,
  readArray,
  stateFromWire,
  stateToWire,
  type TrainingBatchArrays,
  type TrainingStateArrays,
} from './training-codec.js';
