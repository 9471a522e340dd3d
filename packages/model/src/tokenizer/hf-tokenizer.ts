/**
 * Hugging Face tokenizers (`tokenizer.json` + `tokenizer_config.json`) through
 * @huggingface/tokenizers: byte-fallback SentencePiece BPE (Llama, Mistral) and
 * byte-level BPE (Qwen2, Llama 3) alike, as transformers 5 runs them. Which ids end
 * a sequence, whether a prompt starts with BOS and the chat template are the model
 * dir's record, fixed at import.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerModel } from '@huggingface/tokenizers';
import {
  ChatTemplateInvalidError,
  type HfTokenizerRef,
  TokenizerInvalidError,
  TokenizerMissingError,
} from '@swarmbee/core';
import { ChatTemplate, specialTokensOf } from './chat-template.js';
import type { TokenDecoder, Tokenizer } from './tokenizer.js';
import { asTransformersLoadsIt } from './transformers-compat.js';

export const HF_TOKENIZER_FILE = 'tokenizer.json';
export const HF_TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** What the model dir records about an HF tokenizer beyond its files. */
export interface HfTokenizerSettings {
  bosId: number;
  eosId: number;
  addBos: boolean;
  stopIds: number[];
  /** The chat template's end-of-turn token, one of `stopIds`. */
  endOfTurnId?: number;
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

  private constructor(
    model: HfTokenizerModel,
    settings: HfTokenizerSettings,
    vocabSize: number,
    special: ReadonlySet<number>,
    maxTokenChars: number,
    readonly chatTemplate?: ChatTemplate,
  ) {
    this.#model = model;
    this.vocabSize = vocabSize;
    this.bosId = settings.bosId;
    this.eosId = settings.eosId;
    this.addBos = settings.addBos && settings.bosId >= 0;
    this.stopIds = [...settings.stopIds];
    this.#known = (id) => model.id_to_token(id) !== undefined;
    this.#special = special;
    this.maxTokenChars = maxTokenChars;
  }

  /**
   * Parses tokenizer.json and tokenizer_config.json as transformers 5 loads them,
   * checking the vocabulary fits the model's embedding: every id of the BPE vocabulary
   * and every ordinary added token must have a row. Special tokens past the embedding are
   * let be (Gemma 3's text models have 262,144 rows; id 262,144 is the image token of
   * its multimodal siblings): a prompt that holds one is refused as out of vocabulary.
   */
  static parse(
    tokenizerJson: unknown,
    configJson: unknown,
    settings: HfTokenizerSettings,
    vocabSize: number,
    where: string,
    chatTemplate?: ChatTemplate,
  ): HfTokenizer {
    const files = asTransformersLoadsIt({
      tokenizer: tokenizerJson as Record<string, unknown>,
      config: configJson as Record<string, unknown>,
    });
    let model: HfTokenizerModel;
    try {
      model = new HfTokenizerModel(files.tokenizer, files.config);
    } catch (error) {
      throw new TokenizerInvalidError(
        `${where}: @huggingface/tokenizers cannot load this tokenizer.json: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const special = new Set<number>();
    for (const [id, token] of model.get_added_tokens_decoder()) if (token.special) special.add(id);
    // One pass over the vocabulary (get_vocab builds a Map of it: 262,144 entries for
    // Gemma 3, about a second of CPU each time).
    let maxId = -1;
    // Token strings spell a byte-level token's bytes one character each, a SentencePiece
    // piece's characters as they are ("▁" for a space): never fewer than the text's.
    let maxTokenChars = 1;
    for (const [token, id] of model.get_vocab(true)) {
      if (!special.has(id)) maxId = Math.max(maxId, id);
      maxTokenChars = Math.max(maxTokenChars, token.length);
    }
    if (maxId >= vocabSize) {
      throw new TokenizerInvalidError(
        `${where}: ${HF_TOKENIZER_FILE} has token id ${maxId} (${JSON.stringify(model.id_to_token(maxId))}), ` +
          `beyond the model's embedding of ${vocabSize} rows: the tokenizer does not belong to this model`,
      );
    }
    return new HfTokenizer(model, settings, vocabSize, special, maxTokenChars, chatTemplate);
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
    const config = (await read(ref.configFile)) as Record<string, unknown>;
    let chatTemplate: ChatTemplate | undefined;
    if (ref.chatTemplate) {
      const path = join(dirPath, ref.chatTemplate.file);
      const source = await readFile(path, 'utf8').catch((error: Error) => {
        throw new ChatTemplateInvalidError(`${path} cannot be read: ${error.message}`, {
          cause: error,
        });
      });
      chatTemplate = new ChatTemplate(source, specialTokensOf(config), path);
    }
    return HfTokenizer.parse(await read(ref.file), config, ref, vocabSize, dirPath, chatTemplate);
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    // The template's special tokens are left out: BOS is added here, as the model dir records.
    const ids = text.length > 0 ? this.#model.encode(text, { add_special_tokens: false }).ids : [];
    if ((options.bos ?? true) && this.addBos) ids.unshift(this.bosId);
    return ids;
  }

  /** The special added tokens (BOS, EOS, end-of-turn, ...) by id. */
  specialTokens(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [id, token] of this.#model.get_added_tokens_decoder())
      if (token.special) out.set(id, token.content);
    return out;
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
      // Settled even when they show nothing, so the window never grows: every push
      // costs the same, however long the sequence.
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
