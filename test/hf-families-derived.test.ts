/**
 * What else takes a family's model dir: quantization (`swarmbee optimize quantize`)
 * quantizes every family's linear weights and still serves transformers' logits within
 * int8 error; llama2.c export refuses what run.c cannot compute, naming it.
 * References: test/fixtures/hf-families (transformers 5.18.0, scripts/fixtures/hf_families.py).
 */
import { join } from 'node:path';
import { ModelUnsupportedError } from '@swarmbee/core';
import { LocalPipeline } from '@swarmbee/engine';
import { exportLlama2c, importHf, quantizeModel } from '@swarmbee/model';
import t from 'tap';
import {
  HF_FAMILIES_DIR,
  HF_FAMILY_FIXTURES,
  maxLogitError,
  readFamilyReference,
  runGreedy,
} from './helpers/hf-families.js';

/**
 * int8 weights with float32 activations move these tiny random models' logits by at most
 * this fraction of the largest logit. Loose because the fixtures' wide random weights make
 * attention nearly one-hot, so small score errors move whole rows; a wrong layout or a
 * dropped tensor moves logits by their own size.
 */
const INT8_RELATIVE_TOLERANCE = 0.15;

for (const name of HF_FAMILY_FIXTURES) {
  t.test(`${name}: int8 weights stay within int8 error of transformers`, async (t) => {
    const reference = await readFamilyReference(name);
    const root = t.testdir();
    const dir = await importHf({ dir: join(HF_FAMILIES_DIR, name), out: join(root, 'fp32') });
    const quantized = await quantizeModel(dir, {
      bits: 8,
      activations: 'float32',
      out: join(root, 'int8'),
    });
    t.ok(
      quantized.manifest.layers.every((layer) => layer.precision === 'int8'),
      'every layer quantized',
    );
    const pipeline = await LocalPipeline.create(quantized, { stages: 2, threaded: false });
    try {
      // The reference's own ids are forced, so every position compares like for like.
      const run = await runGreedy(pipeline, reference.ids.slice(0, -1), 1, reference.vocab);
      const { error } = maxLogitError(run.logits, reference.logits, reference.vocab);
      const scale = reference.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      t.ok(
        error < INT8_RELATIVE_TOLERANCE * scale,
        `max |Δlogit| ${error.toExponential(2)} of max |logit| ${scale.toFixed(1)}`,
      );
    } finally {
      await pipeline.close();
    }
  });
}

t.test('llama2.c export refuses what run.c cannot compute, naming it', async (t) => {
  const root = t.testdir();
  const cases: [string, RegExp][] = [
    [
      'qwen2-bias',
      /run\.c has no RoPE base 1000000, RMSNorm epsilon 0\.00001, q\/k\/v biases|q\/k\/v biases/,
    ],
    ['gemma3-local-global', /head size 16, .*q\/k norms, post-norms, gelu-tanh activation/],
    ['mistral-window', /sliding-window attention/],
    ['llama-dynamic', /dynamic RoPE scaling/],
  ];
  for (const [name, message] of cases) {
    const dir = await importHf({ dir: join(HF_FAMILIES_DIR, name), out: join(root, name) });
    await t.rejects(exportLlama2c(dir, join(root, `${name}.bin`)), {
      code: ModelUnsupportedError.code,
      message,
    });
  }
});
