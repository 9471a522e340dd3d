/**
 * A synthetic llama2.c-format vocabulary: the three special tokens, 256 byte
 * tokens, printable ASCII, then prefix-closed English word pieces, so text
 * prompts tokenize sensibly whatever the vocab size.
 */
import type { Llama2cVocab } from '../tokenizer/llama2c-tokenizer.js';

const WORDS = (
  'the and was to a he she it of in they said day little big happy girl boy cat dog play saw one time upon once ' +
  'with her his had there what very but not so fun friend tree sun went wanted could see made home mom dad ball ' +
  'park bird fish run jump look like love good new red blue green small long away back into help'
).split(' ');

export function synthVocab(vocabSize: number): Llama2cVocab {
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const seen = new Set(pieces);
  const add = (piece: string) => {
    if (pieces.length < vocabSize && !seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  for (let c = 0x20; c < 0x7f; c++) add(String.fromCharCode(c));
  for (const word of WORDS)
    for (let end = 2; end <= word.length + 1; end++) add(` ${word}`.slice(0, end));
  for (let a = 0; pieces.length < vocabSize && a < 26 * 26; a++) {
    add(` ${String.fromCharCode(97 + Math.floor(a / 26))}${String.fromCharCode(97 + (a % 26))}`);
  }
  if (pieces.length < vocabSize) {
    throw new RangeError(
      `a synthetic vocabulary holds at most ${pieces.length} tokens; asked for ${vocabSize}`,
    );
  }
  // Earlier pieces merge first: scores fall with the id, as in llama2.c's trained vocabularies.
  const scores = Float32Array.from(pieces, (_, id) => (id < 259 ? 0 : -(id - 259)));
  return { maxTokenLength: pieces.reduce((m, p) => Math.max(m, p.length), 0), pieces, scores };
}
