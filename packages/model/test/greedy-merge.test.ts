/**
 * The llama2.c tokenizer's O(n log n) merge gives exactly run.c's tokens: against run.c
 * itself (a fixture made by scripts/runc-encodings.ts), and against run.c's quadratic
 * loop transcribed here as the oracle, on thousands of random and adversarial texts.
 */
import { readFile } from 'node:fs/promises';
import { Llama2cTokenizer, synthVocab } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { mulberry32 } from '../src/synth/random.js';
import type { Llama2cVocab } from '../src/tokenizer/llama2c-tokenizer.js';
import { adversarialTexts, randomText, STORY_ALPHABET, tieVocab } from './helpers/encode-cases.js';

const FIXTURE = new URL('./fixtures/runc-encodings.jsonl', import.meta.url);

interface FixtureCase {
  vocab: 'tok512' | 'ties';
  text: string;
  ids: number[];
}

/**
 * run.c's `encode` as written there: after the code point lookup, rescan every adjacent
 * pair and merge the best one (`>`: the leftmost of equal scores) until none merges.
 */
function runcEncode(vocab: Llama2cVocab, text: string): number[] {
  const ids = new Map<string, number>();
  vocab.pieces.forEach((piece, id) => {
    if (!ids.has(piece)) ids.set(piece, id);
  });
  const tokens = [1];
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 0) tokens.push(ids.get(' ')!);
  for (let start = 0; start < bytes.length; ) {
    let end = start + 1;
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
    const id = ids.get(bytes.toString('latin1', start, end));
    if (id !== undefined) tokens.push(id);
    else for (let i = start; i < end; i++) tokens.push(bytes[i]! + 3);
    start = end;
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = ids.get(vocab.pieces[tokens[i]!]! + vocab.pieces[tokens[i + 1]!]!);
      if (id !== undefined && vocab.scores[id]! > bestScore) {
        bestScore = vocab.scores[id]!;
        bestId = id;
        bestIndex = i;
      }
    }
    if (bestIndex < 0) return tokens;
    tokens.splice(bestIndex, 2, bestId);
  }
}

t.test(
  "run.c's own encodings (fixture): stories260K's tok512 and a vocabulary of ties",
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
    const [header, ...lines] = (await readFile(FIXTURE, 'utf8')).trimEnd().split('\n');
    t.match(JSON.parse(header!).made, /run\.c/);
    const cases = lines.map((line) => JSON.parse(line) as FixtureCase);
    const tokenizers = {
      tok512: await Llama2cTokenizer.load(STORIES260K.tokenizer, 512),
      ties: new Llama2cTokenizer(tieVocab()),
    };
    let compared = 0;
    for (const { vocab, text, ids } of cases) {
      const got = tokenizers[vocab].encode(text);
      if (JSON.stringify(got) !== JSON.stringify(ids))
        t.same(got, ids, `${vocab}: ${JSON.stringify(text.slice(0, 60))}`);
      compared++;
    }
    t.ok(compared >= 300, `${compared} texts encode as run.c encodes them`);
    t.same(tokenizers.tok512.encode('Once upon a time'), [1, 403, 407, 261, 378]);
  },
);

t.test('equals the quadratic run.c loop on random and adversarial texts', async (t) => {
  const vocabs: [string, Llama2cVocab, string][] = [
    ['ties', tieVocab(), 'ab cd'],
    ['synthetic 512', synthVocab(512), STORY_ALPHABET],
  ];
  if (haveSharedModel(t, STORIES260K.tokenizer)) {
    const tok512 = await Llama2cTokenizer.load(STORIES260K.tokenizer, 512);
    vocabs.push(['tok512', tok512.vocab(), STORY_ALPHABET]);
  }
  const random = mulberry32(2024);
  for (const [name, vocab, alphabet] of vocabs) {
    const tokenizer = new Llama2cTokenizer(vocab);
    const texts = [...adversarialTexts()];
    for (let i = 0; i < 1500; i++) texts.push(randomText(random, alphabet, i < 1400 ? 60 : 1500));
    let differ = 0;
    for (const text of texts) {
      const expected = runcEncode(vocab, text);
      const got = tokenizer.encode(text);
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        differ++;
        if (differ <= 3) t.same(got, expected, `${name}: ${JSON.stringify(text.slice(0, 60))}`);
      }
      t.same(tokenizer.encode(text, { bos: false }), got.slice(1));
    }
    t.equal(differ, 0, `${name}: ${texts.length} texts encode as run.c's loop encodes them`);
  }
});

t.test('1 MB of text encodes in well under a second per 100 KB, growing as n log n', async (t) => {
  if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
  const tokenizer = await Llama2cTokenizer.load(STORIES260K.tokenizer, 512);
  const story = await readFile(STORIES260K.refNoPrompt, 'utf8');
  const time = (text: string): { ms: number; tokens: number } => {
    const started = performance.now();
    const tokens = tokenizer.encode(text).length;
    return { ms: performance.now() - started, tokens };
  };
  const texts = (bytes: number) => ({
    story: story.repeat(Math.ceil(bytes / story.length)).slice(0, bytes),
    run: 'a'.repeat(bytes),
  });
  time(texts(10_000).story); // warm up
  const small = texts(100_000);
  const large = texts(1_000_000);
  for (const kind of ['story', 'run'] as const) {
    const tenth = time(small[kind]);
    const whole = time(large[kind]);
    t.comment(
      `${kind}: 100 kB ${tenth.ms.toFixed(0)} ms, 1 MB ${whole.ms.toFixed(0)} ms (${whole.tokens} tokens)`,
    );
    // Quadratic would be 100× the 100 kB time (run.c's loop: hours for 1 MB); n log n about 12×.
    t.ok(whole.ms < 40 * Math.max(tenth.ms, 5), `${kind}: 10× the text costs under 40× the time`);
    t.ok(whole.ms < 20_000, `${kind}: 1 MB within 20 s even on a loaded machine`);
  }
});
