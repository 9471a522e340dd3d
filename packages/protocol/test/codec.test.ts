import {
  FrameInvalidError,
  FrameTooLargeError,
  MessageSchemaError,
  MessageTypeUnknownError,
  ProtocolVersionError,
  ShardInvalidError,
} from '@swarmbee/core';
import {
  checkMessage,
  decode,
  encode,
  encodeParts,
  errorMessageFor,
  float32Tensor,
  float32Values,
  type Message,
  type MessagePlane,
  PROTOCOL_VERSION,
  SPLIT_FIELD_MIN_BYTES,
} from '@swarmbee/protocol';
import { Packr, Unpackr } from 'msgpackr';
import t from 'tap';
import { MESSAGE_SCHEMAS, PLANE_SCHEMAS } from '../src/messages/index.js';
import {
  ALL_SAMPLES,
  CONTROL_SAMPLES,
  DATA_SAMPLES,
  HANDSHAKE_SAMPLES,
  normalize,
  SAMPLED_TYPES,
} from './helpers/messages.js';

/** A plain msgpack encoder, as a peer in another language would be: no records, no extensions. */
const foreign = new Packr({ useRecords: false });
const raw = (value: unknown): Uint8Array => foreign.pack(value);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

t.test('every message type has a sample and a schema', async (t) => {
  t.same([...SAMPLED_TYPES].sort(), Object.keys(MESSAGE_SCHEMAS).sort());
});

t.test('round trip: every message type decodes to what was encoded', async (t) => {
  for (const message of ALL_SAMPLES) {
    const decoded = decode(encode(message));
    t.same(normalize(decoded), normalize(message), message.type);
  }
});

t.test('round trip: each plane accepts its own messages and refuses the others', async (t) => {
  const planes: [MessagePlane, Message[]][] = [
    ['handshake', HANDSHAKE_SAMPLES],
    ['control', CONTROL_SAMPLES],
    ['data', DATA_SAMPLES],
  ];
  for (const [plane, own] of planes) {
    for (const message of own) t.equal(decode(encode(message), { plane }).type, message.type);
    const ownTypes = new Set(Object.keys(PLANE_SCHEMAS[plane]));
    for (const message of ALL_SAMPLES.filter((m) => !ownTypes.has(m.type))) {
      t.equal(
        codeOf(() => decode(encode(message), { plane })),
        MessageTypeUnknownError.code,
        `${message.type} refused on the ${plane} plane`,
      );
    }
  }
});

t.test('frames are plain msgpack maps that a default decoder reads', async (t) => {
  const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const frame = encode({
    type: 'stage.load',
    stage: 2,
    layerStart: 4,
    layerEnd: 6,
    shardId: 'b'.repeat(64),
    nextUrl: undefined,
    isFirst: false,
    isLast: true,
    options: {},
  });
  const value = plain.unpack(frame) as Record<string, unknown>;
  t.equal(value.v, PROTOCOL_VERSION);
  t.equal(value.type, 'stage.load');
  t.notOk('nextUrl' in value, 'an undefined optional field is left out, not sent as an extension');
  t.equal(frame[0]! & 0xf0, 0x80, 'the frame is a msgpack fixmap');
});

t.test(
  'a shard chunk is framed in two parts, its bytes uncopied, that join into its frame',
  async (t) => {
    const sha256 = 'a'.repeat(64);
    for (const bytes of [SPLIT_FIELD_MIN_BYTES - 1, SPLIT_FIELD_MIN_BYTES, 1 << 20]) {
      const data = new Uint8Array(bytes).map((_, i) => i % 251);
      const message: Message = {
        type: 'shard.chunk',
        shardId: sha256,
        file: 'weights.bin',
        offset: 4096,
        sha256,
        data,
      };
      const parts = encodeParts(message);
      t.equal(parts.length, bytes < SPLIT_FIELD_MIN_BYTES ? 1 : 2, `${bytes} bytes`);
      if (parts.length === 2) t.equal(parts[1], data, 'the bytes are the chunk itself');
      const joined = Buffer.concat(parts);
      t.same(joined, Buffer.from(encode(message)), 'exactly the frame encode gives');
      const { data: got, ...fields } = decode(joined) as Message & { data: Uint8Array };
      const { data: _sent, ...sent } = message as Message & { data: Uint8Array };
      t.strictSame(fields, sent, 'the same message decoded');
      t.ok(Buffer.from(got).equals(Buffer.from(data)), 'with the same bytes');
    }
    const small = encodeParts({ type: 'drain' });
    t.equal(small.length, 1, 'a message without trailing bytes is one part');
  },
);

t.test('unknown extra fields are dropped, so peers can add optional fields', async (t) => {
  const decoded = decode(raw({ v: PROTOCOL_VERSION, type: 'drain', futureField: 1 }));
  t.same(decoded, { type: 'drain' });
});

t.test('BAD FRAME - unknown message type', async (t) => {
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION, type: 'teleport' }))),
    MessageTypeUnknownError.code,
  );
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION, type: 'constructor' }))),
    MessageTypeUnknownError.code,
  );
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION, type: '__proto__' }))),
    MessageTypeUnknownError.code,
  );
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION }))),
    MessageTypeUnknownError.code,
    'no type',
  );
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION, type: 7 }))),
    MessageTypeUnknownError.code,
  );
});

t.test('BAD FRAME - wrong protocol version', async (t) => {
  t.equal(
    codeOf(() => decode(raw({ v: PROTOCOL_VERSION + 1, type: 'drain' }))),
    ProtocolVersionError.code,
  );
  t.equal(
    codeOf(() => decode(raw({ type: 'drain' }))),
    ProtocolVersionError.code,
    'no version',
  );
  t.equal(
    codeOf(() => decode(raw({ v: '1', type: 'drain' }))),
    ProtocolVersionError.code,
    'version as text',
  );
});

t.test('BAD FRAME - frame too large', async (t) => {
  const frame = encode({
    type: 'shard.chunk',
    shardId: 'c'.repeat(64),
    file: 'x',
    offset: 0,
    data: new Uint8Array(2000),
    sha256: 'c'.repeat(64),
  });
  t.equal(
    codeOf(() => decode(frame, { maxFrameBytes: 1000 })),
    FrameTooLargeError.code,
  );
  t.equal(
    decode(frame, { maxFrameBytes: frame.byteLength }).type,
    'shard.chunk',
    'exactly at the limit is fine',
  );
});

t.test('BAD FRAME - not one msgpack map', async (t) => {
  const good = encode({ type: 'drain' });
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['truncated', good.subarray(0, good.byteLength - 2)],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0x01])])],
    ['an array', raw([PROTOCOL_VERSION, 'drain'])],
    ['a string', raw('drain')],
    ['nil', raw(null)],
    ['reserved byte 0xc1', new Uint8Array([0xc1])],
    ['map with a non-string key', new Uint8Array([0x81, 0x01, 0x02])],
  ];
  for (const [name, frame] of cases) {
    const code = codeOf(() => decode(frame));
    t.ok(code === FrameInvalidError.code || code === ProtocolVersionError.code, `${name}: ${code}`);
  }
  t.equal(
    codeOf(() => decode(raw([1, 'drain']))),
    FrameInvalidError.code,
  );
});

const SHA = 'd'.repeat(64);

/**
 * `stage.load`s of member 1 of a star group of two running stage 1, before the last stage,
 * each with its group and its load changed as given (a field set to undefined is left out).
 */
function memberLoads(
  cases: [string, Record<string, unknown>, Record<string, unknown>][],
): [string, Record<string, unknown>][] {
  return cases.map(([name, group, load]) => {
    const message: Record<string, unknown> = {
      type: 'stage.load',
      stage: 1,
      layerStart: 0,
      layerEnd: 3,
      shardId: SHA,
      nextUrl: 'ws://h:1',
      isFirst: false,
      isLast: false,
      options: {},
      tensor: {
        group: {
          id: 'g',
          stage: 1,
          members: ['ws://a:1', 'ws://b:1'],
          algorithm: 'star',
          ...group,
        },
        rank: 'rank' in load ? load.rank : 1,
      },
    };
    for (const [key, value] of Object.entries(load))
      if (key !== 'rank') {
        if (value === undefined) delete message[key];
        else message[key] = value;
      }
    return [name, message];
  });
}
const schemaCases: [string, Record<string, unknown>][] = [
  [
    'register without device facts',
    { type: 'register', name: 'w', dataUrl: 'ws://h:1', cachedShards: [] },
  ],
  [
    'register with an http dataUrl',
    {
      type: 'register',
      name: 'w',
      device: {
        arch: 'x',
        platform: 'y',
        cpus: 1,
        memoryBytes: 1,
        freeMemoryBytes: 1,
        ortVersion: '1',
        executionProvider: 'cpu',
        nodeVersion: 'v',
      },
      dataUrl: 'http://h:1',
      cachedShards: [],
    },
  ],
  [
    'register without an execution provider',
    {
      type: 'register',
      name: 'w',
      device: {
        arch: 'x',
        platform: 'y',
        cpus: 1,
        memoryBytes: 1,
        freeMemoryBytes: 1,
        ortVersion: '1',
        nodeVersion: 'v',
      },
      dataUrl: 'ws://h:1',
      cachedShards: [],
    },
  ],
  [
    'register with an execution provider that is not a name',
    {
      type: 'register',
      name: 'w',
      device: {
        arch: 'x',
        platform: 'y',
        cpus: 1,
        memoryBytes: 1,
        freeMemoryBytes: 1,
        ortVersion: '1',
        executionProvider: '<img src=x onerror=alert(1)>',
        nodeVersion: 'v',
      },
      dataUrl: 'ws://h:1',
      cachedShards: [],
    },
  ],
  ['register with a control character in the name', { type: 'register', name: 'a\nb' }],
  ['shard id that is not a sha256', { type: 'shard.done', shardId: 'xyz' }],
  ['shard id in upper case', { type: 'shard.done', shardId: 'D'.repeat(64) }],
  [
    'shard file escaping its directory',
    {
      type: 'shard.chunk',
      shardId: SHA,
      file: '../etc/passwd',
      offset: 0,
      data: new Uint8Array(1),
      sha256: SHA,
    },
  ],
  [
    'shard chunk data as text',
    { type: 'shard.chunk', shardId: SHA, file: 'a', offset: 0, data: 'AAAA', sha256: SHA },
  ],
  [
    'negative chunk offset',
    {
      type: 'shard.chunk',
      shardId: SHA,
      file: 'a',
      offset: -1,
      data: new Uint8Array(1),
      sha256: SHA,
    },
  ],
  [
    'shard offer whose file sizes do not add up',
    {
      type: 'shard.offer',
      shardId: SHA,
      bytes: 5,
      files: [{ name: 'a', bytes: 4, sha256: SHA }],
    },
  ],
  [
    'shard offer listing a file twice',
    {
      type: 'shard.offer',
      shardId: SHA,
      bytes: 2,
      files: [
        { name: 'a', bytes: 1, sha256: SHA },
        { name: 'a', bytes: 1, sha256: SHA },
      ],
    },
  ],
  [
    'stage.load with an empty layer range',
    {
      type: 'stage.load',
      stage: 0,
      layerStart: 3,
      layerEnd: 3,
      shardId: SHA,
      nextUrl: 'ws://h:1',
      isFirst: true,
      isLast: false,
      options: {},
    },
  ],
  [
    'stage.load before the last stage without nextUrl',
    {
      type: 'stage.load',
      stage: 0,
      layerStart: 0,
      layerEnd: 3,
      shardId: SHA,
      isFirst: true,
      isLast: false,
      options: {},
    },
  ],
  [
    'stage.load marking stage 1 first',
    {
      type: 'stage.load',
      stage: 1,
      layerStart: 0,
      layerEnd: 3,
      shardId: SHA,
      isFirst: true,
      isLast: true,
      options: {},
    },
  ],
  ['fractional stage index', { type: 'stage.ready', stage: 1.5, loadMs: 1 }],
  ...memberLoads([
    ['stage.load whose member rank is past its group', {}, { rank: 2 }],
    ['stage.load whose group runs another stage', { stage: 0 }, {}],
    ['stage.load with a group of one', { members: ['ws://a:1'] }, { rank: 0 }],
    ['stage.load with an unknown all-reduce', { algorithm: 'tree' }, {}],
    [
      'stage.load with a member that is no WebSocket URL',
      { members: ['ws://a:1', 'http://b:1'] },
      {},
    ],
    [
      'stage.load whose group leader has no nextUrl before the last stage',
      {},
      { rank: 0, nextUrl: undefined },
    ],
  ]),
  ['stats with a text value', { type: 'stats', requestId: 'r', stats: { a: 'b' } }],
  ['error without retryable', { type: 'error', code: 'X', message: 'y' }],
  [
    'forward without rows',
    {
      type: 'forward',
      batchId: 1,
      rows: [],
      hidden: { dtype: 'float32', dims: [0, 1, 1], data: new Uint8Array(0) },
    },
  ],
  [
    'forward with both tokens and hidden',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 1 }],
      tokens: { dtype: 'int64', dims: [1, 1], data: new Uint8Array(8) },
      hidden: { dtype: 'float32', dims: [1, 1, 2], data: new Uint8Array(8) },
    },
  ],
  [
    'forward with neither tokens nor hidden',
    { type: 'forward', batchId: 1, rows: [{ seqId: 'a', start: 0, count: 1 }] },
  ],
  [
    'forward whose tensor bytes do not match its dims',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 1 }],
      hidden: { dtype: 'float32', dims: [1, 1, 768], data: new Uint8Array(768 * 4 - 1) },
    },
  ],
  [
    'forward whose hidden rows disagree with its rows',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 1 }],
      hidden: { dtype: 'float32', dims: [2, 1, 4], data: new Uint8Array(32) },
    },
  ],
  [
    'forward with int32 tokens',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 2 }],
      tokens: { dtype: 'int32', dims: [1, 2], data: new Uint8Array(8) },
    },
  ],
  [
    'forward with an unknown dtype',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 1 }],
      hidden: { dtype: 'bfloat16', dims: [1, 1, 4], data: new Uint8Array(8) },
    },
  ],
  [
    'forward row with zero tokens',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 0 }],
      tokens: { dtype: 'int64', dims: [1, 0], data: new Uint8Array(0) },
    },
  ],
  [
    'forward with top_p above 1',
    {
      type: 'forward',
      batchId: 1,
      rows: [{ seqId: 'a', start: 0, count: 1, sampling: { temperature: 1, topK: 0, topP: 1.5 } }],
      tokens: { dtype: 'int64', dims: [1, 1], data: new Uint8Array(8) },
    },
  ],
  [
    'tokens with a negative token id',
    { type: 'tokens', batchId: 1, rows: [{ seqId: 'a', tokenId: -1 }] },
  ],
  ['release with a numeric sequence id', { type: 'release', seqIds: [1] }],
  [
    'hello with a short proof',
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      role: 'worker',
      name: 'w',
      clientNonce: 'a'.repeat(64),
      proof: new Uint8Array(31),
    },
  ],
  [
    'hello with an unknown role',
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      role: 'admin',
      name: 'w',
      clientNonce: 'a'.repeat(64),
      proof: new Uint8Array(32),
    },
  ],
];

for (const [name, message] of schemaCases) {
  t.test(`BAD FRAME - schema violation: ${name}`, async (t) => {
    let error: unknown;
    try {
      decode(raw({ v: PROTOCOL_VERSION, ...message }));
    } catch (caught) {
      error = caught;
    }
    t.equal((error as { code?: string })?.code, MessageSchemaError.code);
    t.ok((error as Error).message.length <= 520, 'the error text stays short enough to send back');
  });
}

t.test('tensor bytes decode as a view of the frame when aligned, a copy when not', async (t) => {
  const values = new Float32Array(768).map((_, i) => i * 0.5);
  const message: Message = {
    type: 'forward',
    batchId: 1,
    rows: [{ seqId: 's', start: 9, count: 1 }],
    hidden: float32Tensor(values, [1, 1, 768]),
  };
  const frame = encode(message);
  for (let shift = 0; shift < 4; shift++) {
    // Place the frame at every offset mod 4 inside a bigger buffer, as a socket read might.
    const buffer = new Uint8Array(frame.byteLength + 8);
    buffer.set(frame, shift);
    const decoded = decode(buffer.subarray(shift, shift + frame.byteLength), { plane: 'data' });
    if (decoded.type !== 'forward' || decoded.hidden === undefined)
      throw new Error('not a forward frame');
    const view = float32Values(decoded.hidden);
    t.same(Array.from(view.subarray(0, 4)), [0, 0.5, 1, 1.5], `shift ${shift}`);
    t.equal(view[767], 383.5);
    const aligned = decoded.hidden.data.byteOffset % 4 === 0;
    t.equal(
      view.buffer === buffer.buffer,
      aligned,
      aligned ? 'aligned: zero-copy view' : 'misaligned: copied',
    );
  }
});

t.test('codec cost of a forward frame carrying a 768 × fp32 hidden state', async (t) => {
  const message: Message = {
    type: 'forward',
    batchId: 12,
    rows: [{ seqId: 'seq-1', start: 41, count: 1, sampling: { temperature: 0, topK: 0, topP: 1 } }],
    hidden: float32Tensor(new Float32Array(768).fill(0.25), [1, 1, 768]),
    sentAt: Date.now(),
  };
  const frame = encode(message);
  const rounds = 20_000;
  for (let i = 0; i < 2_000; i++) decode(encode(message), { plane: 'data' });
  let start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) encodeParts(message);
  const encodeUs = Number(process.hrtime.bigint() - start) / 1e3 / rounds;
  start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) decode(frame, { plane: 'data' });
  const decodeUs = Number(process.hrtime.bigint() - start) / 1e3 / rounds;
  t.comment(
    `forward frame ${frame.byteLength} bytes: encode ${encodeUs.toFixed(2)} µs, decode+check ${decodeUs.toFixed(2)} µs`,
  );
  // Generous bounds: the point is to catch an accidental copy-per-element or quadratic path.
  t.ok(encodeUs < 100, `encode ${encodeUs.toFixed(2)} µs`);
  t.ok(decodeUs < 200, `decode ${decodeUs.toFixed(2)} µs`);
});

t.test(
  'errorMessageFor: a coded error becomes a valid error message, its text clipped',
  async (t) => {
    const error = new ShardInvalidError('x'.repeat(5_000), { stage: 1 });
    const message = errorMessageFor(error, { requestId: 'r9' });
    t.equal(message.code, ShardInvalidError.code);
    t.equal(message.stage, 1);
    t.equal(message.requestId, 'r9');
    t.ok(message.message.length < 600);
    t.same(normalize(checkMessage(message, 'control')), normalize(message));
    t.equal(
      codeOf(() => checkMessage(null)),
      MessageSchemaError.code,
    );
    t.equal(
      codeOf(() => checkMessage({ type: 'drain' }, 'data')),
      MessageTypeUnknownError.code,
    );
  },
);
