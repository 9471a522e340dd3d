/**
 * The layout of a frame that carries tensors (protocol 3): the msgpack envelope, then each
 * tensor's raw little-endian bytes, every one starting on an 8-byte boundary of the frame.
 *
 * ```
 * offset 0      0xc1                 marker (a byte msgpack never uses: no plain frame starts so)
 *        1..3   0                    reserved
 *        4..7   u32 LE               envelope length L
 *        8      msgpack map (L)      the message, each tensor field as {dtype, dims} only
 *        …      0 padding            to the next multiple of 8
 *        …      tensor bytes         in TENSOR_FIELDS order, each padded to a multiple of 8
 * ```
 *
 * The frame ends exactly after the last tensor's padding. Frames without tensors stay one
 * msgpack map, as in protocol 2, so a handshake with an older peer still reads its version.
 * A sender hands the parts to the socket as they are (no copy into one buffer); a receiver
 * views each tensor in the frame, aligned whenever the frame itself is 8-byte aligned.
 */
import { FrameInvalidError } from '@swarmbee/core';

/** First byte of a frame with tensors after its envelope (0xc1: never used by msgpack). */
export const TENSOR_FRAME_MARKER = 0xc1;
/** Bytes before the envelope: marker, 3 reserved, u32 envelope length. */
export const TENSOR_FRAME_PREFIX_BYTES = 8;
/** Every tensor starts at a multiple of this many bytes from the frame's start. */
export const TENSOR_ALIGN_BYTES = 8;

/** Fields that travel as raw sections, in the order their bytes follow the envelope. */
export const TENSOR_FIELDS = ['tokens', 'hidden', 'values'] as const;

const PADDING = new Uint8Array(TENSOR_ALIGN_BYTES);

function padding(length: number): number {
  return (TENSOR_ALIGN_BYTES - (length % TENSOR_ALIGN_BYTES)) % TENSOR_ALIGN_BYTES;
}

/**
 * The parts of a tensor frame: prefix and envelope (padded) in one small buffer, then each
 * tensor's bytes as given and its padding. Their total is the frame's length.
 */
export function tensorFrameParts(envelope: Uint8Array, tensors: Uint8Array[]): Uint8Array[] {
  const headLength = TENSOR_FRAME_PREFIX_BYTES + envelope.byteLength;
  const head = new Uint8Array(headLength + padding(headLength));
  head[0] = TENSOR_FRAME_MARKER;
  new DataView(head.buffer).setUint32(4, envelope.byteLength, true);
  head.set(envelope, TENSOR_FRAME_PREFIX_BYTES);
  const parts: Uint8Array[] = [head];
  for (const data of tensors) {
    if (data.byteLength > 0) parts.push(data);
    const pad = padding(data.byteLength);
    if (pad > 0) parts.push(PADDING.subarray(0, pad));
  }
  return parts;
}

/** A tensor frame taken apart: its envelope and where its tensor bytes begin. */
export interface TensorFrameLayout {
  envelope: Uint8Array;
  /** Offset of the first tensor's bytes in the frame. */
  tensorsAt: number;
}

export function readTensorFrame(frame: Uint8Array): TensorFrameLayout {
  if (frame.byteLength < TENSOR_FRAME_PREFIX_BYTES)
    throw new FrameInvalidError('tensor frame shorter than its prefix');
  if (frame[1] !== 0 || frame[2] !== 0 || frame[3] !== 0)
    throw new FrameInvalidError('tensor frame prefix has non-zero reserved bytes');
  const length = new DataView(frame.buffer, frame.byteOffset + 4, 4).getUint32(0, true);
  const end = TENSOR_FRAME_PREFIX_BYTES + length;
  if (end > frame.byteLength)
    throw new FrameInvalidError(
      `tensor frame envelope of ${length} bytes runs past the frame's ${frame.byteLength}`,
    );
  return {
    envelope: frame.subarray(TENSOR_FRAME_PREFIX_BYTES, end),
    tensorsAt: end + padding(end),
  };
}

/**
 * The bytes of each tensor in turn, from `at`: `lengths[i]` bytes, then padding to 8. Throws
 * FrameInvalidError unless they fit and the frame ends exactly after the last one's padding.
 */
export function tensorSections(frame: Uint8Array, at: number, lengths: number[]): Uint8Array[] {
  const sections: Uint8Array[] = [];
  let offset = at;
  for (const length of lengths) {
    if (offset + length > frame.byteLength)
      throw new FrameInvalidError(
        `a tensor of ${length} bytes at offset ${offset} runs past the frame's ${frame.byteLength}`,
      );
    sections.push(frame.subarray(offset, offset + length));
    offset += length + padding(length);
  }
  if (offset !== frame.byteLength)
    throw new FrameInvalidError(
      `tensor frame is ${frame.byteLength} bytes; its envelope and tensors account for ${offset}`,
    );
  return sections;
}
