/**
 * Makes packages/model/test/fixtures/runc-encodings.jsonl: texts encoded by llama2.c's own
 * run.c (its `encode`, BOS first), with stories260K's tok512.bin and with a vocabulary of
 * tied scores, so the tests compare SwarmBee's tokenizer with the reference itself.
 *
 *   npx tsx scripts/runc-encodings.ts --llama2c PATH_TO_LLAMA2C_CHECKOUT
 *
 * Needs a C compiler (cc) and ../shared/models/stories260K/tok512.bin.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serializeLlama2cVocab } from '@swarmbee/model';
import { fixtureTexts, tieVocab } from '../packages/model/test/helpers/encode-cases.js';
import { STORIES260K } from '../test/helpers/shared-models.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { llama2c: { type: 'string' } } });
if (!values.llama2c) {
  process.stderr.write('usage: npx tsx scripts/runc-encodings.ts --llama2c LLAMA2C_CHECKOUT\n');
  process.exit(2);
}
const llama2c = resolve(values.llama2c);
const commit = execFileSync('git', ['-C', llama2c, 'rev-parse', 'HEAD'], {
  encoding: 'utf8',
}).trim();
const work = mkdtempSync(join(tmpdir(), 'runc-encode-'));
try {
  const driver = join(work, 'driver');
  execFileSync('cc', [
    '-O2',
    '-I',
    llama2c,
    '-o',
    driver,
    join(here, 'runc-encode', 'driver.c'),
    '-lm',
  ]);
  const compiler = execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const tiesFile = join(work, 'ties.bin');
  const ties = tieVocab();
  writeFileSync(tiesFile, serializeLlama2cVocab(ties));
  const encode = (tokenizer: string, vocabSize: number, texts: string[]): number[][] => {
    const input = texts.map((text) => `${Buffer.from(text, 'utf8').toString('hex')}\n`).join('');
    const output = execFileSync(driver, [tokenizer, String(vocabSize)], {
      input,
      encoding: 'utf8',
    });
    return output
      .trimEnd()
      .split('\n')
      .map((line) => line.split(' ').map(Number));
  };
  const texts = fixtureTexts();
  const cases = [
    ...zip('tok512', texts.tok512, encode(STORIES260K.tokenizer, 512, texts.tok512)),
    ...zip('ties', texts.ties, encode(tiesFile, ties.pieces.length, texts.ties)),
  ];
  const out = join(here, '..', 'packages', 'model', 'test', 'fixtures', 'runc-encodings.jsonl');
  // JSON lines: the first says how it was made, then one case per line.
  const made = `scripts/runc-encodings.ts: llama2.c ${commit} run.c encode(text, bos=1, eos=0), ${compiler}`;
  const lines = [{ made }, ...cases].map((line) => JSON.stringify(line));
  writeFileSync(out, `${lines.join('\n')}\n`);
  process.stdout.write(`wrote ${cases.length} encodings to ${out}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function zip(vocab: 'tok512' | 'ties', texts: string[], ids: number[][]) {
  if (ids.length !== texts.length)
    throw new Error(`run.c answered ${ids.length} of ${texts.length} texts`);
  return texts.map((text, i) => ({ vocab, text, ids: ids[i]! }));
}
