import { join } from 'node:path';
import { InvalidArgumentError, ModelDirInvalidError } from '@swarmbee/core';
import {
  exportLlama2c,
  importLlama2c,
  Llama2cTokenizer,
  openModelDir,
  readTensor,
  SYNTH_PRESETS,
  synthesizeModel,
  synthVocab,
} from '@swarmbee/model';
import t from 'tap';

const tiny = SYNTH_PRESETS.tiny.config;

t.test('the same seed gives the same weights; another seed does not', async (t) => {
  const root = t.testdir();
  const a = await synthesizeModel({ config: tiny, seed: 7, out: join(root, 'a') });
  const b = await synthesizeModel({ config: tiny, seed: 7, out: join(root, 'b') });
  const c = await synthesizeModel({ config: tiny, seed: 8, out: join(root, 'c') });
  t.equal(a.manifest.weights.sha256, b.manifest.weights.sha256);
  t.not(a.manifest.weights.sha256, c.manifest.weights.sha256);
  t.equal(a.manifest.source.kind, 'synthetic');
});

t.test('a synthetic model exported as llama2.c and imported back is bit-identical', async (t) => {
  const root = t.testdir();
  const gqa = { ...tiny, nLayers: 2 };
  const synth = await synthesizeModel({ config: gqa, seed: 3, out: join(root, 'synth') });
  await exportLlama2c(synth, join(root, 'synth.bin'), join(root, 'synth.tok.bin'));
  const back = await importLlama2c({
    checkpoint: join(root, 'synth.bin'),
    tokenizer: join(root, 'synth.tok.bin'),
    out: join(root, 'back'),
  });
  t.equal(
    back.manifest.weights.sha256,
    synth.manifest.weights.sha256,
    'weights survive the q/k permutation both ways',
  );
  t.equal(back.manifest.modelHash, synth.manifest.modelHash);
  t.same(await readTensor(back, 'layers.1.wqkv'), await readTensor(synth, 'layers.1.wqkv'));
});

t.test('an unshared classifier round-trips too', async (t) => {
  const root = t.testdir();
  const config = { ...tiny, nLayers: 1, sharedClassifier: false };
  const synth = await synthesizeModel({ config, seed: 1, out: join(root, 's') });
  t.ok(synth.manifest.weights.tensors.some((x) => x.name === 'output'));
  await exportLlama2c(synth, join(root, 's.bin'), join(root, 's.tok.bin'));
  const back = await importLlama2c({
    checkpoint: join(root, 's.bin'),
    tokenizer: join(root, 's.tok.bin'),
    out: join(root, 'b'),
  });
  t.equal(back.manifest.config.sharedClassifier, false);
  t.equal(back.manifest.weights.sha256, synth.manifest.weights.sha256);
});

t.test('BAD SHAPE - invalid synthetic configurations are refused by name', async (t) => {
  const root = t.testdir();
  const cases: [Partial<typeof tiny>, RegExp][] = [
    [{ dim: 60 }, /multiple of heads/],
    [{ nKvHeads: 3 }, /multiple of kv-heads/],
    [{ nLayers: 0 }, /nLayers/],
    [{ vocabSize: 100 }, /vocab/],
  ];
  for (const [change, message] of cases) {
    await t.rejects(
      synthesizeModel({ config: { ...tiny, ...change }, seed: 1, out: join(root, 'x') }),
      { code: InvalidArgumentError.code, message },
    );
  }
});

t.test('the synthetic vocabulary tokenizes text and holds every byte', async (t) => {
  const vocab = synthVocab(512);
  t.equal(vocab.pieces.length, 512);
  const tokenizer = new Llama2cTokenizer(vocab);
  const ids = tokenizer.encode('Once upon a time, the little cat');
  t.ok(ids.length < 'Once upon a time, the little cat'.length, 'word pieces merge');
  t.equal(
    ids
      .map((id, i) =>
        i === 0 ? '' : Buffer.from(tokenizer.decodePiece(ids[i - 1]!, id)).toString(),
      )
      .join(''),
    'Once upon a time, the little cat',
  );
});

t.test('BAD MODEL DIR - a missing manifest says how to make one', async (t) => {
  await t.rejects(openModelDir(t.testdir()), {
    code: ModelDirInvalidError.code,
    message: /model import/,
  });
});
