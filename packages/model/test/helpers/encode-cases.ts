/**
 * Inputs for checking the llama2.c tokenizer's merge against run.c: a vocabulary full of
 * tied scores (and scores run.c never merges: -1e10, -Infinity, NaN), and seeded texts,
 * random and adversarial. scripts/runc-encodings.ts encodes them with run.c itself; the
 * tests encode them again and compare.
 */

import { mulberry32 } from '../../src/synth/random.js';
import type { Llama2cVocab } from '../../src/tokenizer/llama2c-tokenizer.js';

const TIE_ALPHABET = 'ab c';

/**
 * Specials, 256 byte tokens, the alphabet, then every string of 2 to 4 alphabet characters,
 * scored from a set of five values so that many different merges tie.
 */
export function tieVocab(): Llama2cVocab {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const seen = new Set(pieces);
  const add = (piece: string): void => {
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  for (const c of TIE_ALPHABET) add(c);
  let level = [...TIE_ALPHABET];
  for (let length = 2; length <= 4; length++) {
    level = level.flatMap((s) => [...TIE_ALPHABET].map((c) => s + c));
    for (const s of level) add(s);
  }
  const random = mulberry32(20_240_513);
  const SCORES = [0, -1, -2, -1e10, Number.NEGATIVE_INFINITY, Number.NaN, -9.99e9];
  const scores = Float32Array.from(pieces, (_, id) => {
    if (id < 259 + TIE_ALPHABET.length) return 0;
    const r = random();
    return r < 0.85 ? SCORES[Math.floor(random() * 3)]! : SCORES[3 + Math.floor(random() * 4)]!;
  });
  return { maxTokenLength: 6, pieces, scores };
}

/** Seeded random text over `alphabet`, 1 to `maxLength` characters. */
export function randomText(random: () => number, alphabet: string, maxLength: number): string {
  const length = 1 + Math.floor(random() * maxLength);
  const chars = [...alphabet];
  let text = '';
  for (let i = 0; i < length; i++) text += chars[Math.floor(random() * chars.length)]!;
  return text;
}

/** Letters, digits, punctuation and a little non-ASCII, weighted towards story text. */
export const STORY_ALPHABET =
  'eeeeeeettttaaaooiinnsshhrrdlluu          .,!?\'"\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:;()é☃日—\t';

/** Runs, repeats and alternations: where choosing the leftmost of tied pairs matters. */
export function adversarialTexts(): string[] {
  const texts: string[] = [];
  for (const unit of ['a', 'e', ' ', 'ab', 'aab', 'the', ' the', 'ee ', '..', 'é', '☃', '\n'])
    for (const count of [1, 2, 3, 4, 5, 7, 8, 16, 33, 100]) texts.push(unit.repeat(count));
  texts.push('aaab', 'baaa', 'abababa', 'a b a b a', '  x  ', 'eeeeee eeeeee', 'Once upon a time');
  return texts;
}

/** The cases the fixture holds: which vocabulary, and the texts. */
export function fixtureTexts(): { tok512: string[]; ties: string[] } {
  const random = mulberry32(13);
  const tok512 = [...adversarialTexts()];
  for (let i = 0; i < 100; i++) tok512.push(randomText(random, STORY_ALPHABET, 300));
  const ties = adversarialTexts().filter((text) =>
    [...text].every((c) => TIE_ALPHABET.includes(c)),
  );
  for (let i = 0; i < 120; i++) ties.push(randomText(random, `${TIE_ALPHABET}d`, 100));
  return { tok512, ties };
}
