/**
 * GGUF tokenizers encode as llama.cpp does: a corpus of prose, code, whitespace, numbers,
 * many scripts, emoji and special tokens, through llama-tokenize (make_tokenizer_reference.py)
 * and through the tokenizer.json SwarmBee makes from the same GGUF — SentencePiece
 * (stories260K, byte fallback on a 512-token vocabulary) and byte-level BPE with the
 * llama-bpe, qwen2 and gpt-2 pre-tokenizers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GgufKeys, ggufTokenizer, HfTokenizer, openGguf } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { BPE_VOCABS, writeBpeVocabGguf } from './helpers/gguf-bpe-vocab.js';
import { GGUF_FIXTURES_DIR, SHARED_GGUF } from './helpers/gguf-fixtures.js';
import { haveSharedModel } from './helpers/shared-models.js';

const corpus = JSON.parse(
  readFileSync(join(GGUF_FIXTURES_DIR, 'tokenizer-corpus.json'), 'utf8'),
) as string[];
const reference = JSON.parse(
  readFileSync(join(GGUF_FIXTURES_DIR, 'tokenizer-reference.json'), 'utf8'),
) as {
  tokenizers: Record<string, { pre: string | null; ids: number[][] }>;
};

async function tokenizerOf(path: string): Promise<HfTokenizer> {
  const file = await openGguf(path);
  const keys = new GgufKeys(file);
  const vocab = keys.array('tokenizer.ggml.tokens')!.length;
  const { files } = ggufTokenizer(keys, vocab);
  const parse = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  return HfTokenizer.parse(
    parse(files.tokenizerJson),
    parse(files.tokenizerConfigJson),
    files.settings,
    vocab,
    path,
  );
}

function check(t: Test, tokenizer: HfTokenizer, expected: number[][]) {
  let same = 0;
  corpus.forEach((text, i) => {
    const ids = tokenizer.encode(text);
    if (JSON.stringify(ids) === JSON.stringify(expected[i])) same++;
    else t.same(ids, expected[i], `${JSON.stringify(text)} encodes as llama-tokenize does`);
  });
  t.equal(
    same,
    corpus.length,
    `${same} of ${corpus.length} corpus entries encode to llama.cpp's ids`,
  );
}

t.test('SentencePiece (tokenizer.ggml.model llama): stories260K-f32.gguf', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.stories260kF32)) return;
  check(t, await tokenizerOf(SHARED_GGUF.stories260kF32), reference.tokenizers.stories260K!.ids);
});

for (const name of Object.keys(BPE_VOCABS) as (keyof typeof BPE_VOCABS)[]) {
  t.test(
    `byte-level BPE (gpt2), pre-tokenizer ${BPE_VOCABS[name].pre}: ${name}'s vocabulary`,
    async (t) => {
      if (!haveSharedModel(t, BPE_VOCABS[name].dir)) return;
      const path = join(t.testdir(), `${name}.gguf`);
      await writeBpeVocabGguf(name, path);
      check(t, await tokenizerOf(path), reference.tokenizers[name]!.ids);
    },
  );
}
