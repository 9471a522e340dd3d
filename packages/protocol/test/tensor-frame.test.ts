/**
 * Protocol 3's tensor frames: the envelope, then raw aligned tensor bytes viewed in place;
 * every malformed one refused with a coded error; and the structural checks of `forward` and
 * `tokens` accepting exactly what their schemas accept.
 */
import {
  FrameInvalidError,
  MessageSchemaError,
  ProtocolVersionError,
  type SwarmBeeError,
} from '@swarmbee/core';
import {
  checkMessage,
  decode,
  encode,
  encodeParts,
  float32Tensor,
  int64Tensor,
  type Message,
  PROTOCOL_VERSION,
  TENSOR_ALIGN_BYTES,
  TENSOR_FRAME_MARKER,
} from '@swarmbee/protocol';
import { Packr, Unpackr } from 'msgpackr';
import t from 'tap';
import { PLANE_SCHEMAS } from '../src/messages/index.js';
import { makeFuzzer } from './helpers/fuzz.js';
import { DATA_SAMPLES, normalize } from './helpers/messages.js';

const foreign = new Packr({ useRecords: false });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as SwarmBeeError).code;
  }
  return undefined;
}

const hiddenForward = (dim: number): Message => ({
  type: 'forward',
  batchId: 7,
  rows: [
    { seqId: 'a', start: 3, count: 1, sampling: { temperature: 0, topK: 0, topP: 1 } },
    { seqId: 'b', start: 9, count: 1 },
  ],
  hidden: float32Tensor(
    new Float32Array(2 * dim).map((_, i) => i / 4),
    [2, 1, dim],
  ),
  sentAt: 1_700_000_000_000,
});

/** A frame placed in a fresh buffer at `offset` (0 = 8-byte aligned). */
function placed(frame: Uint8Array, offset: number): Uint8Array {
  const buffer = new Uint8Array(frame.byteLength + 16);
  buffer.set(frame, offset);
  return buffer.subarray(offset, offset + frame.byteLength);
}

t.test(
  'a forward frame is its envelope, then the hidden state at an 8-byte boundary',
  async (t) => {
    // An odd dim: 2 x 5 floats = 40 bytes, and an envelope of whatever length.
    for (const dim of [5, 64, 768]) {
      const message = hiddenForward(dim);
      const parts = encodeParts(message);
      const hidden = (message as { hidden: { data: Uint8Array } }).hidden.data;
      t.equal(parts[1], hidden, `dim ${dim}: the tensor's own bytes are a part, not a copy`);
      const frame = encode(message);
      t.equal(frame[0], TENSOR_FRAME_MARKER);
      t.equal(frame.byteLength % TENSOR_ALIGN_BYTES, 0, 'the frame ends on a boundary');
      const envelopeLength = new DataView(frame.buffer, frame.byteOffset + 4, 4).getUint32(0, true);
      const envelope = new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(
        frame.subarray(8, 8 + envelopeLength),
      ) as Record<string, unknown>;
      t.same(envelope.hidden, { dtype: 'float32', dims: [2, 1, dim] }, 'a plain msgpack envelope');
      t.equal(envelope.v, PROTOCOL_VERSION);
      const decoded = decode(placed(frame, 0), { plane: 'data' });
      if (decoded.type !== 'forward' || !decoded.hidden) throw new Error('not a forward');
      t.equal(decoded.hidden.data.byteOffset % TENSOR_ALIGN_BYTES, 0, 'the bytes are aligned');
      t.same(normalize(decoded), normalize(message), 'round trip');
    }
  },
);

t.test('received tensor bytes are a view into the frame, never a copy', async (t) => {
  const frame = placed(encode(hiddenForward(64)), 0);
  const decoded = decode(frame, { plane: 'data' });
  if (decoded.type !== 'forward' || !decoded.hidden) throw new Error('not a forward');
  t.equal(decoded.hidden.data.buffer, frame.buffer, 'same buffer');
  const values = new Float32Array(
    decoded.hidden.data.buffer,
    decoded.hidden.data.byteOffset,
    decoded.hidden.data.byteLength / 4,
  );
  t.equal(values[127], 127 / 4);
});

t.test('token frames (stage 0) round trip, with a token tensor of any length', async (t) => {
  for (const count of [1, 3, 128]) {
    const message: Message = {
      type: 'forward',
      batchId: count,
      rows: [{ seqId: 's', start: 0, count }],
      tokens: int64Tensor(
        BigInt64Array.from({ length: count }, (_, i) => BigInt(i)),
        [1, count],
      ),
    };
    t.same(normalize(decode(placed(encode(message), 0))), normalize(message), `${count} tokens`);
  }
});

t.test('BAD FRAME - tensor frames that lie about their layout', async (t) => {
  const good = encode(hiddenForward(5));
  const envelopeLength = new DataView(good.buffer, good.byteOffset + 4, 4).getUint32(0, true);
  const mutate = (change: (frame: Uint8Array) => Uint8Array): Uint8Array =>
    change(Uint8Array.from(good));
  const cases: [string, Uint8Array, string][] = [
    ['shorter than its prefix', good.subarray(0, 5), FrameInvalidError.code],
    ['truncated tensor', good.subarray(0, good.byteLength - 8), FrameInvalidError.code],
    [
      'bytes after the last tensor',
      Uint8Array.from([...good, 0, 0, 0, 0, 0, 0, 0, 0]),
      FrameInvalidError.code,
    ],
    [
      'envelope length past the end',
      mutate((f) => {
        new DataView(f.buffer).setUint32(4, 0xffff_fff0, true);
        return f;
      }),
      FrameInvalidError.code,
    ],
    [
      'reserved bytes set',
      mutate((f) => {
        f[2] = 1;
        return f;
      }),
      FrameInvalidError.code,
    ],
    [
      'envelope is not msgpack',
      mutate((f) => {
        f[8] = 0xc1;
        return f;
      }),
      FrameInvalidError.code,
    ],
    [
      'envelope length cut short',
      mutate((f) => {
        new DataView(f.buffer).setUint32(4, envelopeLength - 3, true);
        return f;
      }),
      FrameInvalidError.code,
    ],
  ];
  for (const [name, frame, code] of cases)
    t.equal(
      codeOf(() => decode(frame)),
      code,
      name,
    );

  const tensorFrame = (envelope: Record<string, unknown>, tail: Uint8Array): Uint8Array => {
    const packed = foreign.pack(envelope);
    const head = new Uint8Array(8 + packed.byteLength + ((8 - (packed.byteLength % 8)) % 8));
    head[0] = TENSOR_FRAME_MARKER;
    new DataView(head.buffer).setUint32(4, packed.byteLength, true);
    head.set(packed, 8);
    return Uint8Array.from([...head, ...tail]);
  };
  const rows = [{ seqId: 's', start: 0, count: 1 }];
  const base = { v: PROTOCOL_VERSION, type: 'forward', batchId: 1, rows };
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame({ ...base, hidden: { dtype: 'float32', dims: [1, 1, 2] } }, new Uint8Array(8)),
      ),
    ),
    undefined,
    'the hand-made frame is valid as such',
  );
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame(
          { ...base, hidden: { dtype: 'float32', dims: [1, 1, 2], data: new Uint8Array(8) } },
          new Uint8Array(8),
        ),
      ),
    ),
    FrameInvalidError.code,
    'bytes inside the envelope as well',
  );
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame({ ...base, hidden: { dtype: 'float64', dims: [1, 1, 2] } }, new Uint8Array(16)),
      ),
    ),
    MessageSchemaError.code,
    'unknown dtype',
  );
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame(
          { ...base, hidden: { dtype: 'float32', dims: [2 ** 40, 2 ** 20] } },
          new Uint8Array(8),
        ),
      ),
    ),
    MessageSchemaError.code,
    'dims whose bytes are not a safe integer',
  );
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame({ ...base, hidden: { dtype: 'float32', dims: [1, 1, 3] } }, new Uint8Array(8)),
      ),
    ),
    FrameInvalidError.code,
    'dims larger than the bytes that follow',
  );
  t.equal(
    codeOf(() =>
      decode(
        tensorFrame(
          { ...base, v: 2, hidden: { dtype: 'float32', dims: [1, 1, 2] } },
          new Uint8Array(8),
        ),
      ),
    ),
    ProtocolVersionError.code,
    'protocol 2 envelope',
  );
});

t.test(
  'structural checks accept exactly what the forward, tokens and allreduce.part schemas accept',
  async (t) => {
    const fuzzer = makeFuzzer(19);
    const samples = DATA_SAMPLES.filter(
      (m) => m.type === 'forward' || m.type === 'tokens' || m.type === 'allreduce.part',
    );
    const variants: unknown[] = [];
    const { rand, int, pick } = fuzzer;
    const junk = [
      undefined,
      null,
      -1,
      0,
      1.5,
      2 ** 53,
      Number.POSITIVE_INFINITY,
      Number.NaN,
      '',
      'x'.repeat(129),
      'ok',
      true,
      [],
      {},
      new Uint8Array(3),
    ];
    /** A copy of `value` with one field somewhere inside replaced by junk. */
    const mutate = (value: unknown, depth: number): unknown => {
      if (Array.isArray(value)) {
        if (value.length === 0 || rand() < 0.2) return rand() < 0.5 ? [] : [pick(junk)];
        const copy = [...value];
        const i = int(copy.length);
        copy[i] = mutate(copy[i], depth + 1);
        return copy;
      }
      if (value instanceof Uint8Array) return rand() < 0.5 ? value.subarray(1) : pick(junk);
      if (value !== null && typeof value === 'object' && depth < 5) {
        const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
        const keys = Object.keys(copy);
        const key = rand() < 0.1 ? 'extra' : pick(keys);
        copy[key] = rand() < 0.5 ? pick(junk) : mutate(copy[key], depth + 1);
        return copy;
      }
      return pick(junk);
    };
    for (let i = 0; i < 3_000; i++) variants.push(mutate(pick(samples), 0));
    let accepted = 0;
    const disagreements: unknown[] = [];
    for (const variant of variants) {
      const type = (variant as { type: string }).type;
      const schema = PLANE_SCHEMAS.data[type];
      if (!schema) continue;
      const expected = schema.safeParse(variant);
      let got: unknown;
      let code: string | undefined;
      try {
        got = checkMessage(variant, 'data');
      } catch (error) {
        code = (error as SwarmBeeError).code;
      }
      if (expected.success) accepted++;
      const agrees = expected.success
        ? code === undefined &&
          JSON.stringify(normalize(got)) === JSON.stringify(normalize(expected.data))
        : code === MessageSchemaError.code;
      if (!agrees) disagreements.push(variant);
    }
    t.same(disagreements.slice(0, 3), [], 'the checks and the schemas agree on every mutation');
    t.ok(accepted > 100, `${accepted} of ${variants.length} mutations stayed valid`);
  },
);
