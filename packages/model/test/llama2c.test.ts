import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CheckpointInvalidError,
  TokenizerInvalidError,
  TokenizerMissingError,
} from '@swarmbee/core';
import { importLlama2c, Llama2cTokenizer, openModelDir } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { readLlama2cLayout } from '../src/llama2c/checkpoint.js';

t.test('stories260K header decodes to its documented shape', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const layout = await readLlama2cLayout(STORIES260K.checkpoint);
  t.match(layout.config, {
    dim: 64,
    hiddenDim: 172,
    nLayers: 5,
    nHeads: 8,
    nKvHeads: 4,
    vocabSize: 512,
    maxSeqLen: 512,
    sharedClassifier: true,
  });
  t.equal(layout.totalBytes, 1_056_540);
});

t.test('BAD CHECKPOINT - truncated, oversized and nonsense headers get coded errors', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const dir = t.testdir();
  const bytes = await readFile(STORIES260K.checkpoint);
  const truncated = join(dir, 'truncated.bin');
  await writeFile(truncated, bytes.subarray(0, bytes.length - 100));
  await t.rejects(readLlama2cLayout(truncated), {
    code: CheckpointInvalidError.code,
    message: /truncated/,
  });
  const padded = join(dir, 'padded.bin');
  await writeFile(padded, Buffer.concat([bytes, Buffer.alloc(64)]));
  await t.rejects(readLlama2cLayout(padded), {
    code: CheckpointInvalidError.code,
    message: /inconsistent/,
  });
  const nonsense = join(dir, 'nonsense.bin');
  const header = Buffer.from(bytes.subarray(0, 28));
  header.writeInt32LE(-5, 8); // n_layers
  await writeFile(nonsense, header);
  await t.rejects(readLlama2cLayout(nonsense), {
    code: CheckpointInvalidError.code,
    message: /n.?Layers|nLayers/i,
  });
  const badHeads = join(dir, 'heads.bin');
  const h2 = Buffer.from(bytes);
  h2.writeInt32LE(3, 16); // n_kv_heads 3 does not divide 8 heads
  await writeFile(badHeads, h2);
  await t.rejects(readLlama2cLayout(badHeads), {
    code: CheckpointInvalidError.code,
    message: /multiple of n_kv_heads/,
  });
  await t.rejects(readLlama2cLayout(join(dir, 'absent.bin')), {
    code: CheckpointInvalidError.code,
  });
});

t.test('tokenizer encodes exactly as run.c', async (t) => {
  if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
  const tokenizer = await Llama2cTokenizer.load(STORIES260K.tokenizer, 512);
  t.same(tokenizer.encode('Once upon a time'), [1, 403, 407, 261, 378]);
  t.same(tokenizer.encode(''), [1], 'an empty prompt is BOS alone: no dummy space');
  t.same(tokenizer.encode('hi', { bos: false }).at(0) !== 1, true);
  // Characters outside the vocabulary fall back to byte tokens (id = byte + 3).
  const snowman = tokenizer.encode('☃', { bos: false });
  t.same(snowman.slice(-3), [0xe2 + 3, 0x98 + 3, 0x83 + 3]);
  t.equal(
    Buffer.from(tokenizer.decodePiece(1, 403)).toString(),
    'Once',
    'the space after BOS is dropped',
  );
  t.equal(Buffer.from(tokenizer.decodePiece(403, 407)).toString(), ' upon');
  t.same(
    Array.from(tokenizer.decodePiece(5, 3 + 7)),
    [],
    'an unprintable lone byte prints nothing',
  );
  t.same(Array.from(tokenizer.decodePiece(5, 3 + 0x41)), [0x41], 'a byte token prints its byte');
});

t.test('BAD TOKENIZER - missing or truncated tokenizer files', async (t) => {
  if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
  const dir = t.testdir();
  await t.rejects(Llama2cTokenizer.load(join(dir, 'nope.bin'), 512), {
    code: TokenizerMissingError.code,
  });
  const bytes = await readFile(STORIES260K.tokenizer);
  await writeFile(join(dir, 'short.bin'), bytes.subarray(0, 2000));
  await t.rejects(Llama2cTokenizer.load(join(dir, 'short.bin'), 512), {
    code: TokenizerInvalidError.code,
    message: /truncated/,
  });
  await t.rejects(Llama2cTokenizer.load(STORIES260K.tokenizer, 256), {
    code: TokenizerInvalidError.code,
    message: /follow the last/,
  });
});

t.test('import writes a complete model dir, and nothing when it fails', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const out = join(root, 'm');
  const dir = await importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out,
  });
  t.equal(dir.manifest.config.nLayers, 5);
  t.equal(dir.manifest.layers.length, 5);
  t.equal(dir.manifest.layers[0]!.kvBytesPerToken, 2 * 4 * 8 * 4);
  t.equal(dir.manifest.tokenizer?.kind, 'llama2c');
  t.equal((await openModelDir(out)).manifest.modelHash, dir.manifest.modelHash);

  const failed = join(root, 'no-tokenizer');
  await t.rejects(
    importLlama2c({ checkpoint: STORIES260K.checkpoint, tokenizer: undefined, out: failed }),
    { code: TokenizerMissingError.code },
  );
  const badTokenizer = join(root, 'bad-tokenizer');
  await t.rejects(
    importLlama2c({
      checkpoint: STORIES260K.checkpoint,
      tokenizer: join(root, 'absent'),
      out: badTokenizer,
    }),
    { code: TokenizerMissingError.code },
  );
  t.notOk(existsSync(failed) || existsSync(badTokenizer), 'a failed import leaves no output dir');
  await t.rejects(
    importLlama2c({ checkpoint: STORIES260K.checkpoint, tokenizer: STORIES260K.tokenizer, out }),
    { code: 'SWARMBEE_ERR_OUTPUT_EXISTS' },
  );
});
