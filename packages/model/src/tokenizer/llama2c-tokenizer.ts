/**
 * llama2.c's tokenizer format and its exact encode/decode behaviour (run.c):
 * int32 max_token_length, then per token {float32 score, int32 length, bytes}.
 */
import { readFile } from 'node:fs/promises';
import { TokenizerInvalidError, TokenizerMissingError } from '@swarmbee/core';
import { mergeGreedy } from './greedy-merge.js';
import type { TokenDecoder, Tokenizer } from './tokenizer.js';

export const LLAMA2C_BOS_ID = 1;
export const LLAMA2C_EOS_ID = 2;
/** Byte-fallback tokens `<0x00>`..`<0xFF>` start at this id. */
const BYTE_TOKEN_BASE = 3;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export interface Llama2cVocab {
  maxTokenLength: number;
  /** Token strings as byte strings (latin1: one char per byte). */
  pieces: string[];
  scores: Float32Array;
}

export class Llama2cTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId = LLAMA2C_BOS_ID;
  readonly eosId = LLAMA2C_EOS_ID;
  readonly stopIds = [LLAMA2C_BOS_ID];
  readonly maxTokenChars: number;
  readonly #pieces: string[];
  readonly #scores: Float32Array;
  readonly #ids = new Map<string, number>();
  readonly #spaceId: number;

  constructor(vocab: Llama2cVocab) {
    this.#pieces = vocab.pieces;
    this.#scores = vocab.scores;
    this.vocabSize = vocab.pieces.length;
    // A piece's bytes bound the UTF-16 code units it stands for (a byte token: one byte).
    this.maxTokenChars = vocab.pieces.reduce((most, piece) => Math.max(most, piece.length), 1);
    vocab.pieces.forEach((piece, id) => {
      if (!this.#ids.has(piece)) this.#ids.set(piece, id);
    });
    const space = this.#ids.get(' ');
    if (space === undefined || this.vocabSize < BYTE_TOKEN_BASE + 256) {
      throw new TokenizerInvalidError(
        'llama2.c tokenizer must hold the 3 special tokens, 256 byte tokens and a " " piece',
      );
    }
    this.#spaceId = space;
  }

  static async load(path: string, vocabSize: number): Promise<Llama2cTokenizer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new TokenizerMissingError(
        `tokenizer file ${path} cannot be read: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return new Llama2cTokenizer(parseLlama2cVocab(bytes, vocabSize, path));
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (options.bos ?? true) tokens.push(this.bosId);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > 0) tokens.push(this.#spaceId);
    // One UTF-8 code point (up to 4 bytes) at a time; unknown code points fall back to bytes.
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const id = this.#ids.get(bytes.toString('latin1', start, end));
      if (id !== undefined) tokens.push(id);
      else for (let i = start; i < end; i++) tokens.push(bytes[i]! + BYTE_TOKEN_BASE);
      start = end;
    }
    // run.c also considers the pair (BOS, next); BOS never merges, so starting after it is equal.
    return mergeGreedy(tokens, (options.bos ?? true) ? 1 : 0, this.#merge, this.#scores);
  }

  /** The token two adjacent tokens' text joins into (run.c's `str_lookup` of the pair), or -1. */
  readonly #merge = (left: number, right: number): number =>
    this.#ids.get(this.#pieces[left]! + this.#pieces[right]!) ?? -1;

  /**
   * Bytes run.c prints for `token` following `prev`: the leading space after BOS is
   * dropped, byte tokens become raw bytes, and lone unprintable bytes print as nothing.
   */
  decodePiece(prev: number, token: number): Uint8Array {
    let piece = this.#pieces[token];
    if (piece === undefined) return new Uint8Array(0);
    if (prev === this.bosId && piece.startsWith(' ')) piece = piece.slice(1);
    const byte = BYTE_PIECE.exec(piece);
    const bytes = byte ? Buffer.of(Number.parseInt(byte[1]!, 16)) : Buffer.from(piece, 'latin1');
    // run.c's safe_printf: a lone byte that is neither printable nor whitespace prints nothing.
    if (bytes.length === 1 && !isPrintableOrSpace(bytes[0]!)) return new Uint8Array(0);
    return bytes;
  }

  /**
   * run.c's pieces, joined into text by a streaming UTF-8 decoder: a character split
   * over byte tokens is emitted with its last byte. Only the last context id matters.
   */
  decoder(contextIds: readonly number[]): TokenDecoder {
    let previous = contextIds.at(-1) ?? -1;
    const utf8 = new TextDecoder('utf-8');
    return {
      push: (id) => {
        const text = utf8.decode(this.decodePiece(previous, id), { stream: true });
        previous = id;
        return text;
      },
      end: () => utf8.decode(),
    };
  }

  /** The raw vocabulary, for writing it back out as a llama2.c tokenizer file. */
  vocab(): Llama2cVocab {
    const maxTokenLength = this.#pieces.reduce((m, p) => Math.max(m, p.length), 0);
    return { maxTokenLength, pieces: [...this.#pieces], scores: this.#scores.slice() };
  }
}

function isPrintableOrSpace(byte: number): boolean {
  return (byte >= 0x20 && byte <= 0x7e) || (byte >= 0x09 && byte <= 0x0d);
}

export function parseLlama2cVocab(
  bytes: Uint8Array,
  vocabSize: number,
  path: string,
): Llama2cVocab {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => {
    throw new TokenizerInvalidError(
      `${path}: not a llama2.c tokenizer for a ${vocabSize}-token model: ${why}`,
    );
  };
  if (bytes.length < 4) bad('file is shorter than its header');
  const maxTokenLength = view.getInt32(0, true);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.length) bad(`truncated after ${id} tokens`);
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength || offset + length > bytes.length) {
      bad(`token ${id} has length ${length} (max ${maxTokenLength})`);
    }
    pieces.push(Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1'));
    offset += length;
  }
  if (offset !== bytes.length)
    bad(`${bytes.length - offset} bytes follow the last of ${vocabSize} tokens`);
  return { maxTokenLength, pieces, scores };
}

export function serializeLlama2cVocab(vocab: Llama2cVocab): Uint8Array {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(4);
  header.writeInt32LE(vocab.maxTokenLength, 0);
  parts.push(header);
  vocab.pieces.forEach((piece, id) => {
    const entry = Buffer.alloc(8);
    entry.writeFloatLE(vocab.scores[id]!, 0);
    entry.writeInt32LE(piece.length, 4);
    parts.push(entry, Buffer.from(piece, 'latin1'));
  });
  return Buffer.concat(parts);
}
