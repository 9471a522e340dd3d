/** One valid sample of every message type, for round trips and fuzzing. */
import {
  type ControlMessage,
  type DataMessage,
  float32Tensor,
  type HandshakeMessage,
  int64Tensor,
  type MessageType,
  toWireArray,
} from '@swarmbee/protocol';

const SHA = 'a'.repeat(64);
const SHA2 = '0123456789abcdef'.repeat(4);
const NONCE = 'f0'.repeat(32);

export const HANDSHAKE_SAMPLES: HandshakeMessage[] = [
  { type: 'challenge', protocolVersion: 2, nonce: NONCE },
  {
    type: 'hello',
    protocolVersion: 2,
    role: 'worker',
    name: 'pi-4.local',
    clientNonce: NONCE,
    proof: new Uint8Array(32).fill(7),
  },
  { type: 'welcome', proof: new Uint8Array(32).fill(9) },
];

export const CONTROL_SAMPLES: ControlMessage[] = [
  {
    type: 'register',
    name: 'jetson-1',
    device: {
      arch: 'arm64',
      platform: 'linux',
      cpus: 6,
      memoryBytes: 8 * 2 ** 30,
      freeMemoryBytes: 5 * 2 ** 30,
      ortVersion: '1.30.0',
      executionProvider: 'cpu',
      nodeVersion: 'v20.19.0',
    },
    dataUrl: 'ws://10.0.0.7:7701',
    cachedShards: [SHA, SHA2],
  },
  { type: 'registered', workerId: 'w-1' },
  {
    type: 'shard.offer',
    shardId: SHA,
    bytes: 300,
    files: [
      { name: 'stage.onnx', bytes: 100, sha256: SHA2 },
      { name: 'stage.onnx.data', bytes: 200, sha256: SHA },
    ],
  },
  { type: 'shard.need', shardId: SHA, have: false },
  { type: 'shard.need', shardId: SHA, have: false, verified: [{ file: 'stage.onnx', bytes: 100 }] },
  {
    type: 'shard.chunk',
    shardId: SHA,
    file: 'stage.onnx.data',
    offset: 4096,
    data: new Uint8Array([1, 2, 3]),
    sha256: SHA2,
  },
  { type: 'shard.done', shardId: SHA },
  { type: 'shard.stored', shardId: SHA },
  {
    type: 'stage.load',
    stage: 0,
    layerStart: 0,
    layerEnd: 6,
    shardId: SHA,
    nextUrl: 'wss://10.0.0.8:7701',
    isFirst: true,
    isLast: false,
    options: { intraOpThreads: 2, maxSequences: 8, kvBudgetBytes: 256 * 2 ** 20 },
  },
  {
    type: 'stage.load',
    stage: 1,
    layerStart: 6,
    layerEnd: 12,
    shardId: SHA,
    // A member other than the leader sends nothing on: no nextUrl before the last stage.
    isFirst: false,
    isLast: false,
    tensor: {
      group: {
        id: 'stage-1-g1',
        stage: 1,
        members: ['ws://10.0.0.8:7701', 'ws://10.0.0.9:7701', 'ws://10.0.0.10:7701'],
        algorithm: 'ring',
      },
      rank: 2,
    },
    options: {},
  },
  { type: 'stage.ready', stage: 0, loadMs: 812.5 },
  {
    type: 'profile.request',
    requestId: 'r1',
    kind: 'compute',
    params: { tokens: 16, model: 'tiny', warm: true },
  },
  { type: 'profile.result', requestId: 'r1', result: { msPerLayer: [1.5, 1.7], note: 'ok' } },
  { type: 'stats.request', requestId: 'r2' },
  { type: 'stats', requestId: 'r2', stats: { forwardMs: 3.25, kvBytes: 1024 } },
  { type: 'drain' },
  { type: 'stop' },
  {
    type: 'train.load',
    requestId: 't1',
    session: 's1',
    stage: 1,
    layerStart: 2,
    layerEnd: 4,
    graphs: {
      forward: new Uint8Array([8, 1, 18, 4]),
      backward: new Uint8Array([8, 2]),
      params: [{ name: 'layers.2.q_proj.lora_A', dims: [4, 64] }],
      inputGradient: true,
      saved: [{ name: 'saved_0', dims: ['B', 'T', 64] }],
    },
    activations: 'recompute',
    adapters: { 'layers.2.q_proj.lora_A': toWireArray(new Float32Array([0.5, -0.25])) },
    options: { intraOpThreads: 1, weightDecay: 0.01 },
  },
  {
    type: 'train.ready',
    requestId: 't1',
    session: 's1',
    info: {
      layerStart: 2,
      layerEnd: 4,
      isFirst: false,
      isLast: false,
      dim: 64,
      vocabSize: 512,
      maxSeqLen: 256,
      params: [{ name: 'layers.2.q_proj.lora_A', dims: [4, 64] }],
      inputGradient: true,
      activations: 'stash',
    },
  },
  {
    type: 'train.call',
    requestId: 't2',
    session: 's1',
    call: {
      op: 'forward',
      batch: {
        id: 3,
        lengths: toWireArray(new Int32Array([2])),
        width: 2,
        tokens: toWireArray(new BigInt64Array([1n, 5n])),
        targets: toWireArray(new BigInt64Array([5n, -1n])),
        lossScale: 0.5,
      },
    },
  },
  {
    type: 'train.result',
    requestId: 't2',
    session: 's1',
    result: { hidden: toWireArray(new Float32Array([1, 2, 3, 4])), loss: 2.5 },
  },
  {
    type: 'fed.round',
    requestId: 'f1',
    round: 0,
    modelHash: SHA,
    spec: { rank: 2, alpha: 4, targets: ['q_proj'], layers: [0, 1] },
    tensors: { 'layers.0.q_proj.lora_A': toWireArray(new Float32Array([0.1, 0.2])) },
    settings: {
      steps: 4,
      learningRate: 0.001,
      microBatchSize: 2,
      accumulation: 2,
      seqLen: 64,
      truncate: false,
      seed: 1,
      weightDecay: 0,
      maxGradNorm: 1,
      proximalMu: 0.01,
      pruneLayers: 1,
      activations: 'recompute',
    },
  },
  {
    type: 'fed.update',
    requestId: 'f1',
    round: 0,
    examples: 12,
    trainedTokens: 480,
    lossBefore: 2.4,
    lossAfter: 2.1,
    trainMs: 812,
    tensors: { 'layers.0.q_proj.lora_A': toWireArray(new Float32Array([0.1, 0.25])) },
  },
  {
    type: 'error',
    code: 'SWARMBEE_ERR_SHARD_INVALID',
    message: 'bad shard',
    retryable: false,
    stage: 1,
    requestId: 'r3',
  },
];

const hidden = new Float32Array(2 * 3 * 4).map((_, i) => i / 8);
const tokens = new BigInt64Array([1n, 15043n, 0n, 2n, 29871n, 13n]);

export const DATA_SAMPLES: DataMessage[] = [
  {
    type: 'forward',
    batchId: 3,
    rows: [
      {
        seqId: 'a',
        start: 0,
        count: 3,
        sampling: { temperature: 0.7, topK: 40, topP: 0.9, seed: 42 },
        logprobs: true,
      },
      { seqId: 'b', start: 0, count: 2, adapter: 2 },
    ],
    tokens: int64Tensor(tokens, [2, 3]),
    sentAt: 1_700_000_000_000.5,
  },
  {
    type: 'forward',
    batchId: 4,
    rows: [
      { seqId: 'a', start: 3, count: 3 },
      { seqId: 'b', start: 2, count: 1, sampling: { temperature: 0, topK: 0, topP: 1 } },
    ],
    hidden: float32Tensor(hidden, [2, 3, 4]),
  },
  { type: 'tokens', batchId: 4, rows: [{ seqId: 'b', tokenId: 29871, logprob: -0.25 }], sentAt: 5 },
  { type: 'release', seqIds: ['a', 'b'] },
  { type: 'probe', probeId: 'probe-1', payload: new Uint8Array(16), reply: true },
  { type: 'probe.reply', probeId: 'probe-1', bytes: 16 },
  { type: 'group.join', group: 'stage-1-tp', rank: 2, size: 4 },
  {
    type: 'allreduce.part',
    group: 'stage-1-tp',
    seq: 7,
    round: 1,
    from: 2,
    offset: 6,
    length: 12,
    values: float32Tensor(hidden.subarray(0, 6), [6]),
  },
  { type: 'train.hidden', session: 's1', id: 4, values: float32Tensor(hidden, [hidden.length]) },
  { type: 'train.grad', session: 's1', id: 4, values: float32Tensor(hidden.subarray(0, 4), [4]) },
  {
    type: 'error',
    code: 'SWARMBEE_ERR_KV_BUDGET_EXCEEDED',
    message: 'full',
    retryable: true,
    stage: 2,
    batchId: 4,
  },
];

export const ALL_SAMPLES = [...HANDSHAKE_SAMPLES, ...CONTROL_SAMPLES, ...DATA_SAMPLES];

/** Every message type, from the samples: a test fails if a new type has no sample. */
export const SAMPLED_TYPES = new Set<MessageType>(ALL_SAMPLES.map((message) => message.type));

/** Turns every byte view into a plain Buffer so structures compare by content. */
export function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, normalize(v)]),
    );
  }
  return value;
}
