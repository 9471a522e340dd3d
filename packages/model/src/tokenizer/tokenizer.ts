import type { ChatTemplate } from './chat-template.js';

/** What generation needs from a tokenizer, whatever its file format. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** BOS id; -1 when the tokenizer has none. */
  readonly bosId: number;
  readonly eosId: number;
  /**
   * Sampled ids that end a sequence. llama2.c's run.c stops at BOS, which delimits its
   * stories; Hugging Face models stop at their EOS ids.
   */
  readonly stopIds: readonly number[];
  /**
   * Token ids of `text`, with a BOS first when `bos` is set (default) and the
   * tokenizer puts one there (run.c's `encode(text, 1, 0)`; HF's `add_bos_token`).
   */
  encode(text: string, options?: { bos?: boolean }): number[];
  /** The model's chat template, when it has one (see `encodeChat`). */
  readonly chatTemplate?: ChatTemplate;
  /**
   * An incremental decoder for a sequence that continues `contextIds` (ids already
   * shown or not to be shown, such as BOS; usually the prompt). Push each new id and
   * print what it returns: text is emitted as soon as it is stable — a character
   * split over byte tokens waits for its last byte, spacing that depends on the
   * neighbours is settled — and `end()` returns what is still held back.
   */
  decoder(contextIds: readonly number[]): TokenDecoder;
}

/** Text of a growing id sequence, emitted piece by piece. */
export interface TokenDecoder {
  /** Adds one id; returns the text that is now stable (often empty). */
  push(id: number): string;
  /** Ends the sequence; returns whatever text was still held back. */
  end(): string;
}

/**
 * Decodes a whole id sequence as it would stream: the first id is context (BOS for a
 * text prompt), the rest is text. For llama2.c tokenizers this is exactly what run.c prints.
 */
export function decodeIds(tokenizer: Tokenizer, ids: readonly number[]): string {
  const decoder = tokenizer.decoder(ids.slice(0, 1));
  let text = '';
  for (let i = 1; i < ids.length; i++) text += decoder.push(ids[i]!);
  return text + decoder.end();
}
