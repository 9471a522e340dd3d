/**
 * A GGUF's tokenizer (`tokenizer.ggml.*`) as Hugging Face tokenizer files, encoding as
 * llama.cpp's `llama_tokenize` does, so a GGUF model dir needs no tokenizer of its own kind:
 *
 * - `llama` (SentencePiece with scores and byte fallback): a BPE model whose merges are
 *   every split of a piece into two pieces, ranked by the merged piece's score — the pair
 *   llama.cpp's SPM tokenizer merges first is the one with the best score, ties to the
 *   left, and so is the lowest-ranked merge; spaces become `▁` with one prepended
 *   (`add_space_prefix`), control tokens are split out first, unknown characters fall back
 *   to `<0xNN>` tokens.
 * - `gpt2` (byte-level BPE): the GGUF's merges as they are, the text split first by
 *   llama.cpp's regular expressions for `tokenizer.ggml.pre`, then mapped to byte-level
 *   characters.
 *
 * BOS/EOS/EOT ids, `add_bos_token` and the stop ids follow llama.cpp's vocabulary loader;
 * `tokenizer.chat_template` is kept in tokenizer_config.json, where a Hugging Face model
 * dir keeps it.
 */
import { ModelUnsupportedError, TokenizerInvalidError } from '@swarmbee/core';
import type { HfTokenizerFiles } from '../model-dir.js';
import { HfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { type GgufKeys, preview } from './gguf-keys.js';

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** Token texts llama.cpp treats as ending generation whatever the metadata says. */
const EOG_TEXTS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|eom_id|>',
  '<EOT>',
];
/** Token texts llama.cpp takes for EOT when `tokenizer.ggml.eot_token_id` is absent. */
const EOT_TEXTS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<EOT>',
  '<｜end▁of▁sentence｜>',
];

const LLAMA3_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

/**
 * llama.cpp's pre-tokenizer regular expressions (llm_tokenizer_bpe, commit c392e509), each
 * splitting the pieces of the one before, by `tokenizer.ggml.pre`; and whether a word that is
 * a token is taken whole before any merge (llama.cpp's `ignore_merges`).
 */
const PRE_TOKENIZERS: { names: string[]; regexes: string[]; ignoreMerges?: boolean }[] = [
  {
    names: ['llama3', 'llama-v3', 'llama-bpe', 'falcon3'],
    regexes: [LLAMA3_REGEX],
    ignoreMerges: true,
  },
  { names: ['dbrx', 'smaug-bpe'], regexes: [LLAMA3_REGEX] },
  {
    names: ['qwen2', 'deepseek-r1-qwen', 'stablelm2'],
    regexes: [
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ],
  },
  {
    names: [
      'gpt-2',
      'phi-2',
      'roberta-bpe',
      'mpt',
      'olmo',
      'jais',
      'jina-es',
      'jina-de',
      'jina-v1-en',
      'jina-v2-es',
      'jina-v2-de',
      'jina-v2-code',
      'gigachat',
    ],
    regexes: [GPT2_REGEX],
  },
  {
    names: ['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b'],
    regexes: ['\\p{N}', GPT2_REGEX],
  },
  { names: ['falcon'], regexes: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2_REGEX, '[0-9][0-9][0-9]'] },
  {
    names: ['chatglm-bpe'],
    regexes: [
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ],
  },
  {
    names: ['default'],
    regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'],
  },
];

export interface GgufTokenizer {
  files: HfTokenizerFiles;
  /** `tokenizer.ggml.model`. */
  model: 'llama' | 'gpt2';
  /** `tokenizer.ggml.pre`, for `gpt2`. */
  pre?: string;
}

/** Builds and checks the tokenizer files; `vocabSize` is the embedding's row count. */
export function ggufTokenizer(keys: GgufKeys, vocabSize: number): GgufTokenizer {
  const model = keys.string('tokenizer.ggml.model');
  if (model !== 'llama' && model !== 'gpt2')
    throw new ModelUnsupportedError(
      `${keys.name}: tokenizer.ggml.model is ${JSON.stringify(model)}; SwarmBee reads the llama (SentencePiece) and gpt2 (byte-level BPE) tokenizers`,
    );
  const tokens = strings(keys, 'tokenizer.ggml.tokens');
  if (tokens.length !== vocabSize)
    throw new TokenizerInvalidError(
      `${keys.name}: tokenizer.ggml.tokens lists ${tokens.length} tokens but token_embd.weight has ${vocabSize} rows; the vocabulary disagrees with the embedding`,
    );
  const types = numbers(keys, 'tokenizer.ggml.token_type', tokens.length, TokenType.normal);
  const id = (key: string): number | undefined => {
    if (!keys.has(key)) return undefined;
    const value = keys.uint(key);
    // llama.cpp writes -1 (as uint32) for "none".
    if (value === 0xffffffff) return undefined;
    if (value >= tokens.length)
      throw new TokenizerInvalidError(
        `${keys.name}: ${key} is ${value}, beyond the ${tokens.length}-token vocabulary`,
      );
    return value;
  };
  const defaults = model === 'llama' ? { bos: 1, eos: 2, unk: 0 } : { bos: 11, eos: 11 };
  const bosId = id('tokenizer.ggml.bos_token_id') ?? defaults.bos;
  const eosId = id('tokenizer.ggml.eos_token_id') ?? defaults.eos;
  const byText = (texts: string[]) => texts.map((t) => tokens.indexOf(t)).find((i) => i >= 0);
  const eotId = id('tokenizer.ggml.eot_token_id') ?? byText(EOT_TEXTS);
  const eomId = id('tokenizer.ggml.eom_token_id');
  const pre = model === 'gpt2' ? keys.string('tokenizer.ggml.pre', 'default') : undefined;
  const preTokenizer =
    pre === undefined ? undefined : PRE_TOKENIZERS.find((p) => p.names.includes(pre));
  if (pre !== undefined && !preTokenizer)
    throw new ModelUnsupportedError(
      `${keys.name}: tokenizer.ggml.pre is ${JSON.stringify(pre)}, a pre-tokenizer SwarmBee does not know; it knows ${PRE_TOKENIZERS.flatMap((p) => p.names).join(', ')}`,
    );
  const addBos = keys.bool(
    'tokenizer.ggml.add_bos_token',
    model === 'llama' || preTokenizer?.ignoreMerges === true,
  );
  if (keys.bool('tokenizer.ggml.add_eos_token', false))
    throw new ModelUnsupportedError(
      `${keys.name}: tokenizer.ggml.add_eos_token is true; SwarmBee's prompts never end with EOS`,
    );
  const stopIds = [
    ...new Set(
      [eosId, eotId, eomId, ...EOG_TEXTS.map((t) => tokens.indexOf(t))].filter(
        (i): i is number => i !== undefined && i >= 0,
      ),
    ),
  ];
  const special = (i: number) =>
    types[i] === TokenType.control ||
    types[i] === TokenType.userDefined ||
    types[i] === TokenType.unknown;
  const addedTokens = tokens.flatMap((content, i) =>
    special(i)
      ? [
          {
            id: i,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[i] !== TokenType.userDefined,
          },
        ]
      : [],
  );
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  if (Object.keys(vocab).length !== tokens.length)
    throw new TokenizerInvalidError(`${keys.name}: tokenizer.ggml.tokens lists a token twice`);
  const spec =
    model === 'llama'
      ? spmTokenizerJson(keys, tokens, types, vocab, addedTokens)
      : bpeTokenizerJson(keys, vocab, addedTokens, preTokenizer!);
  const config: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: false,
    bos_token: tokens[bosId] ?? null,
    eos_token: tokens[eosId] ?? null,
    clean_up_tokenization_spaces: false,
    model_max_length: Number.MAX_SAFE_INTEGER,
  };
  if (keys.has('tokenizer.chat_template'))
    config.chat_template = keys.string('tokenizer.chat_template');
  const encode = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value)}\n`);
  const settings = { bosId, eosId, addBos, stopIds };
  // Loading it checks that @huggingface/tokenizers takes what was made.
  HfTokenizer.parse(spec, config, settings, vocabSize, keys.name);
  return {
    model,
    ...(pre === undefined ? {} : { pre }),
    files: { tokenizerJson: encode(spec), tokenizerConfigJson: encode(config), settings },
  };
}

type AddedToken = Record<string, unknown>;

function spmTokenizerJson(
  keys: GgufKeys,
  tokens: string[],
  types: number[],
  vocab: Record<string, number>,
  addedTokens: AddedToken[],
): object {
  const scores = numbers(keys, 'tokenizer.ggml.scores', tokens.length, 0);
  const unk = tokens.findIndex((_, i) => types[i] === TokenType.unknown);
  // Every split of a mergeable piece into two pieces, best merged score first; ties keep
  // the order of the pieces' ids (as transformers' SentencePiece converter ranks them).
  const merges: [string, string, number, number][] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== TokenType.normal && types[id] !== TokenType.userDefined) return;
    const chars = Array.from(piece);
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (left in vocab && right in vocab) merges.push([left, right, scores[id]!, id]);
    }
  });
  merges.sort((a, b) => b[2] - a[2] || vocab[a[0]]! - vocab[b[0]]! || vocab[a[1]]! - vocab[b[1]]!);
  const addSpacePrefix = keys.bool('tokenizer.ggml.add_space_prefix', true);
  const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpaces] }
      : replaceSpaces,
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk >= 0 ? tokens[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map(([l, r]) => [l, r]),
    },
  };
}

function bpeTokenizerJson(
  keys: GgufKeys,
  vocab: Record<string, number>,
  addedTokens: AddedToken[],
  pre: (typeof PRE_TOKENIZERS)[number],
): object {
  const merges = strings(keys, 'tokenizer.ggml.merges').map((m, i) => {
    const space = m.indexOf(' ', 1);
    if (space < 0)
      throw new TokenizerInvalidError(
        `${keys.name}: tokenizer.ggml.merges[${i}] ${preview(m)} is not two tokens`,
      );
    return [m.slice(0, space), m.slice(space + 1)];
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...pre.regexes.map((regex) => ({
          type: 'Split',
          pattern: { Regex: regex },
          behavior: 'Isolated',
          invert: false,
        })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges === true,
      vocab,
      merges,
    },
  };
}

function strings(keys: GgufKeys, key: string): string[] {
  const list = keys.array(key);
  if (!list?.every((s): s is string => typeof s === 'string'))
    throw new TokenizerInvalidError(
      `${keys.name}: ${key} is ${list ? 'not a list of strings' : 'missing'}`,
    );
  return list;
}

function numbers(keys: GgufKeys, key: string, length: number, fallback: number): number[] {
  const list = keys.array(key);
  if (!list) return new Array<number>(length).fill(fallback);
  if (list.length !== length || !list.every((n) => typeof n === 'number'))
    throw new TokenizerInvalidError(
      `${keys.name}: ${key} has ${list.length} entries${list.every((n) => typeof n === 'number') ? '' : ' (not all numbers)'}, for ${length} tokens`,
    );
  return list as number[];
}
