/**
 * Hugging Face tokenizers (`tokenizer.json` + `tokenizer_config.json`) through
 * @huggingface/tokenizers: byte-fallback SentencePiece BPE (Llama, Mistral) and
 * byte-level BPE (Qwen2, Llama 3) alike. Which ids end a sequence and whether a
 * prompt starts with BOS are the model dir's record, fixed at import.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerModel } from '@huggingface/tokenizers';
import { type HfTokenizerRef, TokenizerInvalidError, TokenizerMissingError } from '@swarmbee/core';
import type { TokenDecoder, Tokenizer } from './tokenizer.js';

export const HF_TOKENIZER_FILE = 'tokenizer.json';
export const HF_TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** What the model dir records about an HF tokenizer beyond its files. */
export interface HfTokenizerSettings {
  bosId: number;
  eosId: number;
  addBos: boolean;
  stopIds: number[];
}

/** Context ids an incremental decoder keeps to settle the text at its start. */
const DECODER_CONTEXT_TOKENS = 6;
/**
 * Ids a decoder holds back while their text ends in an incomplete character; one
 * UTF-8 character spans at most 4 byte tokens, so beyond this the text is final.
 */
const DECODER_MAX_HELD_TOKENS = 4;
const REPLACEMENT = '\uFFFD';

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly stopIds: readonly number[];
  readonly addBos: boolean;
  readonly maxTokenChars: number;
  readonly #model: HfTokenizerModel;
  /** Ids the tokenizer knows; others (padding rows of the embedding) decode to nothing. */
  readonly #known: (id: number) => boolean;
  /** Special tokens' ids: `decode` skips them, as transformers' does. */
  readonly #special: ReadonlySet<number>;

  /** `specialIds`: the ids of tokenizer.json's special added tokens ({@link specialIdsOf}). */
  constructor(
    model: HfTokenizerModel,
    settings: HfTokenizerSettings,
    vocabSize: number,
    specialIds: ReadonlySet<number> = new Set(),
  ) {
    this.#special = specialIds;
    this.#model = model;
    this.vocabSize = vocabSize;
    this.bosId = settings.bosId;
    this.eosId = settings.eosId;
    this.addBos = settings.addBos && settings.bosId >= 0;
    this.stopIds = [...settings.stopIds];
    this.#known = (id) => model.id_to_token(id) !== undefined;
    // Token strings spell a byte-level token's bytes one character each, a SentencePiece
    // piece's characters as they are ("▁" for a space): never fewer than the text's.
    let longest = 1;
    for (const token of model.get_vocab(true).keys()) longest = Math.max(longest, token.length);
    this.maxTokenChars = longest;
  }

  /** Parses tokenizer.json and tokenizer_config.json, checking the ids fit the model. */
  static parse(
    tokenizerJson: unknown,
    configJson: unknown,
    settings: HfTokenizerSettings,
    vocabSize: number,
    where: string,
  ): HfTokenizer {
    let model: HfTokenizerModel;
    try {
      model = new HfTokenizerModel(tokenizerJson as object, configJson as object);
    } catch (error) {
      throw new TokenizerInvalidError(
        `${where}: @huggingface/tokenizers cannot load this tokenizer.json: ${(error as Error).message}`,
        { cause: error },
      );
    }
    let maxId = -1;
    for (const id of model.get_vocab(true).values()) maxId = Math.max(maxId, id);
    if (maxId >= vocabSize) {
      throw new TokenizerInvalidError(
        `${where}: the tokenizer has token id ${maxId}, beyond the model's vocabulary of ${vocabSize}`,
      );
    }
    return new HfTokenizer(
      model,
      settings,
      vocabSize,
      specialIdsOf(model, tokenizerJson, configJson),
    );
  }

  static async load(dirPath: string, ref: HfTokenizerRef, vocabSize: number): Promise<HfTokenizer> {
    const read = async (file: string) => {
      try {
        return JSON.parse(await readFile(join(dirPath, file), 'utf8')) as unknown;
      } catch (error) {
        throw new TokenizerMissingError(
          `${join(dirPath, file)} cannot be read as JSON: ${(error as Error).message}`,
          { cause: error },
        );
      }
    };
    return HfTokenizer.parse(
      await read(ref.file),
      await read(ref.configFile),
      ref,
      vocabSize,
      dirPath,
    );
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    // The template's special tokens are left out: BOS is added here, as the model dir records.
    const ids = text.length > 0 ? this.#model.encode(text, { add_special_tokens: false }).ids : [];
    if ((options.bos ?? true) && this.addBos) ids.unshift(this.bosId);
    return ids;
  }

  /** The id of a token's string, e.g. `</s>`. */
  tokenId(token: string): number | undefined {
    return this.#model.token_to_id(token);
  }

  /** Whether tokenizer.json's post-processor puts `bosId` before a prompt (when the config does not say). */
  templateAddsBos(bosId: number): boolean {
    if (bosId < 0) return false;
    const plain = this.#model.encode('a', { add_special_tokens: false }).ids;
    const templated = this.#model.encode('a', { add_special_tokens: true }).ids;
    return templated[0] === bosId && plain[0] !== bosId;
  }

  /** The text of `ids`, special tokens skipped, as transformers' `decode` gives it. */
  decode(ids: readonly number[]): string {
    const known = ids.filter(this.#known);
    return known.length === 0 ? '' : this.#model.decode(known, { skip_special_tokens: true });
  }

  /**
   * Decodes a window of recent ids twice — without and with the new ones — and
   * emits the difference once it no longer ends in an incomplete character
   * (text-generation-inference's prefix/read offsets). Both decodes start at the same
   * id, so decoders that treat the first token specially (SentencePiece's
   * leading-space strip) treat them alike, and spacing matches decoding the whole.
   */
  decoder(contextIds: readonly number[]): TokenDecoder {
    // ids[0, settled) decode to text already shown; ids[settled, end) are new.
    const ids = [...contextIds];
    let settled = 0;
    // Keep the last few shown ids as context, never starting inside a character split
    // over byte tokens (its bytes would regroup once more ids arrive), and never none:
    // a new id first in the window would lose what decoders strip from the first token.
    const settle = () => {
      let drop = Math.max(0, ids.length - DECODER_CONTEXT_TOKENS);
      while (drop < ids.length - 1 && this.decode(ids.slice(drop)).startsWith(REPLACEMENT)) drop++;
      ids.splice(0, drop);
      settled = ids.length;
    };
    settle();
    const emit = (force: boolean): string => {
      const before = this.decode(ids.slice(0, settled));
      const after = this.decode(ids);
      const complete =
        !after.endsWith(REPLACEMENT) || ids.length - settled > DECODER_MAX_HELD_TOKENS;
      if (!(complete || force)) return '';
      // Settled even when they show nothing (special tokens, ids the tokenizer lacks), so
      // the window never grows: every push costs the same, however long the sequence.
      settle();
      return after.length > before.length ? after.slice(before.length) : '';
    };
    return {
      push: (id) => {
        // An id that shows nothing, wherever it stands, never enters the window: a run of
        // them can neither grow it nor push the text before them out of its context.
        if (!this.#known(id) || this.#special.has(id)) return '';
        ids.push(id);
        return emit(false);
      },
      end: () => emit(true),
    };
  }
}

/**
 * The ids `decode` skips as special: tokenizer.json's added tokens marked special, and
 * tokenizer_config.json's `additional_special_tokens`.
 */
export function specialIdsOf(
  model: HfTokenizerModel,
  tokenizerJson: unknown,
  configJson: unknown,
): Set<number> {
  const ids = new Set<number>();
  const added = (tokenizerJson as { added_tokens?: { id?: unknown; special?: unknown }[] })
    .added_tokens;
  for (const token of Array.isArray(added) ? added : [])
    if (token.special === true && typeof token.id === 'number') ids.add(token.id);
  const extra = (configJson as { additional_special_tokens?: unknown } | null)
    ?.additional_special_tokens;
  for (const token of Array.isArray(extra) ? extra : []) {
    // A string, or an AddedToken record {content, ...}.
    const content: unknown = typeof token === 'string' ? token : token?.content;
    const id = typeof content === 'string' ? model.token_to_id(content) : undefined;
    if (id !== undefined) ids.add(id);
  }
  return ids;
}
