/**
 * The one msgpack codec of the wire. A frame is a single msgpack map — the message's own
 * fields plus `v`, the protocol version — or, when the message carries tensors, that map as
 * an envelope followed by the tensors' raw bytes, 8-byte aligned (`tensor-frame.ts`). Only
 * core msgpack types appear (maps, arrays, strings, numbers, booleans, `bin` for bytes), so
 * any msgpack library can read an envelope.
 *
 * Configuration, and why:
 * - `useRecords: false`, `structuredClone: false`, `moreTypes: false`: records, reference
 *   tracking and typed-array extensions are msgpackr-only (and records are stateful across
 *   frames); plain maps cost a few bytes of keys per frame and stay portable.
 * - `skipValues: [undefined]`: an optional field set to `undefined` is left out, as in
 *   JSON, instead of becoming msgpackr's `undefined` extension that other decoders reject.
 * - `int64AsType: 'number'`: other encoders write large integers (timestamps) as int64;
 *   every integer field is range-checked by its schema anyway.
 * - `copyBuffers: false` (the default): `bin` fields decode as views into the received
 *   frame, so bytes are never copied on the way in; tensors are views into the frame too.
 *
 * The data plane's hot messages (`forward`, `tokens`) are checked structurally
 * (`messages/data-checks.ts`); every other message by its zod schema.
 */
import {
  FrameInvalidError,
  FrameTooLargeError,
  MessageSchemaError,
  MessageTypeUnknownError,
  ProtocolVersionError,
  type SwarmBeeError,
  type TensorData,
} from '@swarmbee/core';
import { type Options, Packr, Unpackr } from 'msgpackr';
import type { z } from 'zod';
import { checkTensorShape, STRUCTURAL_CHECKS } from './messages/data-checks.js';
import {
  type ErrorMessage,
  MESSAGE_SCHEMAS,
  type Message,
  type MessagePlane,
  PLANE_SCHEMAS,
  type PlaneMessage,
  PROTOCOL_VERSION,
} from './messages/index.js';
import {
  readTensorFrame,
  TENSOR_FIELDS,
  TENSOR_FRAME_MARKER,
  tensorFrameParts,
  tensorSections,
} from './tensor-frame.js';

/** Default largest frame accepted, bytes (64 MiB: a 2,048-token prefill chunk at dim 8,192 in fp32). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Longest error text a decode failure carries: errors travel back to the sender. */
const MAX_ERROR_TEXT_LENGTH = 500;

const portable: Options & { skipValues: unknown[] } = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  skipValues: [undefined],
};
const packr = new Packr(portable);
const unpackr = new Unpackr(portable);

/** A trailing byte field at least this large is framed as its own part, never copied: 64 KiB. */
export const SPLIT_FIELD_MIN_BYTES = 64 * 1024;

/**
 * A message without tensors as the parts of its frame: the frame, or — when its last field
 * is bytes of at least {@link SPLIT_FIELD_MIN_BYTES} (a shard chunk) — the msgpack of
 * everything before those bytes (their bin32 header last) and the bytes themselves,
 * uncopied. Concatenated, the parts are exactly the one-buffer frame.
 */
function trailingBytesParts(message: Message): Uint8Array[] {
  const fields = Object.keys(message);
  const last = fields.at(-1);
  const tail = last === undefined ? undefined : (message as Record<string, unknown>)[last];
  const whole = () => [packr.pack({ v: PROTOCOL_VERSION, ...message })];
  if (!(tail instanceof Uint8Array) || tail.byteLength < SPLIT_FIELD_MIN_BYTES) return whole();
  const head = packr.pack({ v: PROTOCOL_VERSION, ...message, [last as string]: new Uint8Array(0) });
  // An empty bin field packs as bin8 of length 0: swap it for the bin32 header of the bytes.
  if (head[head.length - 2] !== 0xc4 || head[head.length - 1] !== 0x00) return whole();
  const framed = new Uint8Array(head.length + 3);
  framed.set(head.subarray(0, head.length - 2));
  const header = new DataView(framed.buffer, framed.byteOffset + head.length - 2, 5);
  header.setUint8(0, 0xc6);
  header.setUint32(1, tail.byteLength);
  return [framed, tail];
}

/**
 * Encodes one message as the parts of one frame, in order: a single part for a message
 * without tensors (two when it ends in a large byte field: see trailingBytesParts); for one
 * with tensors, the envelope and then each tensor's bytes as they
 * are (not copied). Parts stay valid until the caller changes the tensors it passed in.
 */
export function encodeParts(message: Message): Uint8Array[] {
  try {
    const fields = message as unknown as Record<string, unknown>;
    const tensors: Uint8Array[] = [];
    let envelope: Record<string, unknown> | undefined;
    for (const field of TENSOR_FIELDS) {
      const tensor = fields[field] as TensorData | undefined;
      if (tensor === undefined) continue;
      envelope ??= { v: PROTOCOL_VERSION, ...fields };
      envelope[field] = { dtype: tensor.dtype, dims: tensor.dims };
      tensors.push(tensor.data);
    }
    if (envelope === undefined) return trailingBytesParts(message);
    return tensorFrameParts(packr.pack(envelope), tensors);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MessageSchemaError(clip(`cannot encode a ${message.type} message: ${reason}`), {
      cause: error,
    });
  }
}

/**
 * Encodes one message as one frame, in one buffer. The result may be a view into the
 * codec's shared output buffer; it stays valid (later encodes write after it), but copy it
 * before mutating. Channels send {@link encodeParts} instead, without joining them.
 */
export function encode(message: Message): Uint8Array {
  const parts = encodeParts(message);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The `error` message that reports `error` to the peer, its text clipped to travel safely. */
export function errorMessageFor(
  error: SwarmBeeError,
  about: { requestId?: string; batchId?: number } = {},
): ErrorMessage {
  const wire = error.toWire();
  return { type: 'error', ...wire, message: clip(wire.message), ...about };
}

export interface DecodeOptions {
  /** Accept only this plane's messages; default: any message type. */
  plane?: MessagePlane;
  /** Largest frame accepted, bytes. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
}

function clip(text: string): string {
  return text.length <= MAX_ERROR_TEXT_LENGTH ? text : `${text.slice(0, MAX_ERROR_TEXT_LENGTH)}…`;
}

function describeIssues(type: string, error: z.ZodError): string {
  const issues = error.issues
    .slice(0, 3)
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(message)'}: ${issue.message}`,
    );
  return clip(`${type} message does not match its schema: ${issues.join('; ')}`);
}

/**
 * Decodes and checks one frame. Throws, with a stable `code`:
 * FrameTooLargeError (over `maxFrameBytes`), FrameInvalidError (not exactly one msgpack
 * map), ProtocolVersionError (`v` is not {@link PROTOCOL_VERSION}),
 * MessageTypeUnknownError (type unknown, or not of `plane`), MessageSchemaError (fields).
 * Byte fields of the result are views into `bytes`.
 */
export function decode<P extends MessagePlane>(
  bytes: Uint8Array,
  options: DecodeOptions & { plane: P },
): PlaneMessage<P>;
export function decode(bytes: Uint8Array, options?: DecodeOptions): Message;
export function decode(bytes: Uint8Array, options: DecodeOptions = {}): Message {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (bytes.byteLength > maxFrameBytes) {
    throw new FrameTooLargeError(
      `frame of ${bytes.byteLength} bytes exceeds the limit of ${maxFrameBytes}`,
    );
  }
  const tensorFrame = bytes[0] === TENSOR_FRAME_MARKER ? readTensorFrame(bytes) : undefined;
  let frame: unknown;
  try {
    frame = unpackr.unpack(tensorFrame ? tensorFrame.envelope : bytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FrameInvalidError(clip(`frame is not one msgpack message: ${reason}`), {
      cause: error,
    });
  }
  if (
    typeof frame !== 'object' ||
    frame === null ||
    Object.getPrototypeOf(frame) !== Object.prototype
  ) {
    throw new FrameInvalidError('frame is not a msgpack map');
  }
  const { v } = frame as { v?: unknown };
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolVersionError(
      clip(`frame speaks protocol version ${String(v)}, this end speaks ${PROTOCOL_VERSION}`),
    );
  }
  if (tensorFrame) attachTensors(frame as Record<string, unknown>, bytes, tensorFrame.tensorsAt);
  const message = checkMessage(frame, options.plane);
  if (tensorFrame && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
    WHOLE_FRAMES.add(bytes.buffer);
  return message;
}

/** Buffers that held exactly one decoded tensor frame (a socket's reassembled message). */
const WHOLE_FRAMES = new WeakSet<ArrayBufferLike>();

/**
 * Whether a decoded tensor's bytes lie in a buffer that held nothing but their frame, so a
 * receiver done with the frame may move that whole buffer to another thread instead of
 * copying the tensor out (a WebSocket hands over a fragmented message in a buffer of its own).
 */
export function tensorOwnsFrame(tensor: TensorData): boolean {
  return WHOLE_FRAMES.has(tensor.data.buffer);
}

/**
 * Gives each tensor field of a tensor frame's envelope its bytes: a view into the frame.
 * Its dtype and dims decide its length; the frame must end where the last one does.
 */
function attachTensors(frame: Record<string, unknown>, bytes: Uint8Array, at: number): void {
  const type = String(frame.type);
  const shapes: { field: string; byteLength: number }[] = [];
  for (const field of TENSOR_FIELDS) {
    const value = frame[field];
    if (value === undefined) continue;
    if (typeof value === 'object' && value !== null && 'data' in value)
      throw new FrameInvalidError(`${type} frame carries ${field} bytes inside its envelope`);
    shapes.push({ field, byteLength: checkTensorShape(type, field, value).byteLength });
  }
  const sections = tensorSections(
    bytes,
    at,
    shapes.map((s) => s.byteLength),
  );
  shapes.forEach(({ field }, i) => {
    frame[field] = { ...(frame[field] as object), data: sections[i] };
  });
}

function schemaFor(type: unknown, plane: MessagePlane | undefined): z.ZodType {
  if (typeof type !== 'string') throw new MessageTypeUnknownError('frame carries no message type');
  const schemas = plane === undefined ? MESSAGE_SCHEMAS : PLANE_SCHEMAS[plane];
  const schema = Object.hasOwn(schemas, type)
    ? (schemas as Record<string, z.ZodType>)[type]
    : undefined;
  if (schema === undefined) {
    const where = plane === undefined ? '' : ` on the ${plane} plane`;
    throw new MessageTypeUnknownError(clip(`unknown message type '${type}'${where}`));
  }
  return schema;
}

/**
 * Checks a message against the schema of its type (and `plane`, when given) and returns
 * the checked copy, without unknown fields. Throws MessageTypeUnknownError or
 * MessageSchemaError. `decode` calls it on every frame; channels call it before sending,
 * so a malformed message fails where it was made instead of closing the connection.
 */
export function checkMessage(value: unknown, plane?: MessagePlane): Message {
  if (typeof value !== 'object' || value === null) {
    throw new MessageSchemaError('a message must be an object');
  }
  const type = (value as { type?: unknown }).type;
  const structural =
    typeof type === 'string' && Object.hasOwn(STRUCTURAL_CHECKS, type)
      ? STRUCTURAL_CHECKS[type]
      : undefined;
  if (structural !== undefined && (plane === undefined || plane === 'data'))
    return structural(value as Record<string, unknown>) as Message;
  const checked = schemaFor(type, plane).safeParse(value);
  if (!checked.success) throw new MessageSchemaError(describeIssues(String(type), checked.error));
  return checked.data as Message;
}
