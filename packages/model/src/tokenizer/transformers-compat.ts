/**
 * transformers 5 does not run every `tokenizer.json` as written, and SwarmBee encodes
 * and decodes as transformers does (the reference its tests hold it to):
 *
 * - `LlamaTokenizer` (Llama 2, TinyLlama, Mistral, Phi-3) rebuilds its pipeline from the
 *   config: no normalizer, a Metaspace pre-tokenizer (prefix "▁" always when `legacy`,
 *   only before the first section otherwise, never without `add_prefix_space`), and a
 *   decoder that strips the one leading space it added. The files of such repositories
 *   often still hold the older Prepend + Replace normalizer, which encodes a leading
 *   space as an extra "▁" token.
 * - `clean_up_tokenization_spaces` is ignored for BPE models (it would strip spaces
 *   before punctuation), whatever the config says (Llama 3 says true).
 */

/** tokenizer_config.json's class names whose pipeline transformers rebuilds as LlamaTokenizer's. */
const LLAMA_TOKENIZER_CLASSES = new Set(['LlamaTokenizer', 'LlamaTokenizerFast']);

export interface TokenizerFilesJson {
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
}

/** The two JSON objects as transformers 5 would have the tokenizer behave. */
export function asTransformersLoadsIt(files: TokenizerFilesJson): TokenizerFilesJson {
  const tokenizer = { ...files.tokenizer };
  const config = { ...files.config };
  const model = tokenizer.model as { type?: unknown } | undefined;
  if (model?.type === 'BPE') config.clean_up_tokenization_spaces = false;
  if (LLAMA_TOKENIZER_CLASSES.has(String(config.tokenizer_class))) {
    // LlamaTokenizer.__init__: add_prefix_space defaults to true, legacy to false.
    const addPrefixSpace = config.add_prefix_space ?? true;
    const legacy = config.legacy ?? false;
    tokenizer.normalizer = null;
    tokenizer.pre_tokenizer = {
      type: 'Metaspace',
      replacement: '▁',
      prepend_scheme: addPrefixSpace ? (legacy ? 'always' : 'first') : 'never',
      split: false,
    };
    tokenizer.decoder = {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addPrefixSpace ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    };
  }
  return { tokenizer, config };
}
