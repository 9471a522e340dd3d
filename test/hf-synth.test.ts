/**
 * `swarmbee model synth-hf`: checkpoints of real Llama 3 shapes with seeded random
 * weights. The structure is checked against the real models' facts (parameter counts,
 * config keys, bf16, split files with an index); the `llama3-tiny` shape — the same
 * structure at test size — against transformers: test/fixtures/hf-synth/llama3-tiny holds
 * transformers' logits for the very bytes synth-hf writes (scripts/fixtures/
 * hf_synth_reference.py, transformers 5.18.0, torch 2.13 CPU, float32, eager), and the
 * import must compute them.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalPipeline } from '@swarmbee/engine';
import {
  HF_SYNTH_SHAPES,
  hfSynthTensors,
  importHf,
  quantizeModel,
  SafetensorsFile,
  synthesizeHfCheckpoint,
} from '@swarmbee/model';
import t from 'tap';
import { maxLogitError, readFamilyReference, runGreedy } from './helpers/hf-families.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'hf-synth');
const LOGIT_TOLERANCE = 1e-4;

interface SynthReference {
  seed: number;
  fileBytes: number;
  files: Record<string, string>;
}

const parameters = (shape: keyof typeof HF_SYNTH_SHAPES) =>
  hfSynthTensors(shape).reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);

t.test('the real shapes have the real models’ parameter counts and config', async (t) => {
  // The counts Meta publishes (model cards, and the sum over the released safetensors).
  t.equal(parameters('llama3.2-1b'), 1_235_814_400, 'Llama 3.2 1B');
  t.equal(parameters('llama3.2-3b'), 3_212_749_824, 'Llama 3.2 3B');
  t.equal(parameters('llama3.1-8b'), 8_030_261_248, 'Llama 3.1 8B');
  for (const name of ['llama3.2-1b', 'llama3.2-3b', 'llama3.1-8b'] as const) {
    const c = HF_SYNTH_SHAPES[name].config;
    t.equal(c.vocab_size, 128256, `${name}: vocabulary`);
    t.equal(c.num_key_value_heads, 8, `${name}: 8 KV heads`);
    t.equal(c.rope_scaling.rope_type, 'llama3', `${name}: llama3 RoPE scaling`);
    t.equal(c.torch_dtype, 'bfloat16', `${name}: bf16`);
  }
  t.equal(HF_SYNTH_SHAPES['llama3.2-1b'].config.tie_word_embeddings, true, '1B ties its head');
  t.equal(HF_SYNTH_SHAPES['llama3.1-8b'].config.tie_word_embeddings, false, '8B has lm_head');
  t.notOk(
    hfSynthTensors('llama3.2-1b').some((t) => t.name === 'lm_head.weight'),
    'a tied shape writes no lm_head.weight',
  );
  t.ok(hfSynthTensors('llama3.1-8b').some((t) => t.name === 'lm_head.weight'));
});

t.test('llama3-tiny: bf16 files split with an index, the same bytes every time', async (t) => {
  const reference = JSON.parse(
    await readFile(join(FIXTURES, 'llama3-tiny', 'reference.json'), 'utf8'),
  ) as SynthReference;
  const out = join(t.testdir(), 'ckpt');
  const events: { done: number; total: number; unit: string }[] = [];
  const made = await synthesizeHfCheckpoint({
    shape: 'llama3-tiny',
    seed: reference.seed,
    fileBytes: reference.fileBytes,
    out,
    progress: (e) => events.push(e),
  });
  t.ok(made.files.length >= 3, `${made.files.length} safetensors files`);
  const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as {
    metadata: { total_size: number };
    weight_map: Record<string, string>;
  };
  t.equal(index.metadata.total_size, made.bytes, 'total_size is the tensor bytes');
  const tensors = hfSynthTensors('llama3-tiny');
  t.same(Object.keys(index.weight_map).sort(), tensors.map((t) => t.name).sort());
  let seen = 0;
  for (const file of made.files) {
    const st = await SafetensorsFile.open(join(out, file));
    try {
      for (const [name, entry] of st.tensors) {
        t.equal(index.weight_map[name], file, `${name} is where the index says`);
        t.equal(entry.dtype, 'BF16');
        seen++;
      }
    } finally {
      await st.close();
    }
  }
  t.equal(seen, tensors.length, 'every tensor once');
  const hashes: Record<string, string> = {};
  for (const file of (await readdir(out)).sort())
    hashes[file] = createHash('sha256')
      .update(await readFile(join(out, file)))
      .digest('hex');
  t.same(hashes, reference.files, 'the bytes transformers was given');
  t.equal(events.at(-1)?.done, made.bytes, 'progress ends at the total');
  t.ok(
    events.every((e) => e.unit === 'bytes' && e.total === made.bytes),
    'progress counts bytes',
  );
});

t.test('llama3-tiny: imported, equals transformers in 1 and 2 stages', async (t) => {
  const name = 'llama3-tiny';
  const reference = await readFamilyReference(name, FIXTURES);
  const meta = JSON.parse(
    await readFile(join(FIXTURES, name, 'reference.json'), 'utf8'),
  ) as SynthReference;
  t.equal(reference.transformers, '5.18.0');
  const root = t.testdir();
  const ckpt = join(root, 'ckpt');
  await synthesizeHfCheckpoint({
    shape: name,
    seed: meta.seed,
    fileBytes: meta.fileBytes,
    out: ckpt,
  });
  const events: { phase: string; done: number; total: number; unit: string }[] = [];
  const dir = await importHf({
    dir: ckpt,
    out: join(root, 'model'),
    tokenizer: false,
    progress: (e) => events.push(e),
  });
  const writes = events.filter((e) => e.phase === 'write weights');
  t.ok(writes.length > 1 && writes.every((e) => e.unit === 'bytes'), 'import progress in bytes');
  t.equal(writes.at(-1)?.done, writes.at(-1)?.total, 'import progress ends at its total');
  t.equal(dir.manifest.tokenizer, undefined, 'no tokenizer: token ids in');
  t.equal(dir.manifest.config.ropeScaling?.type, 'llama3');
  t.equal(dir.manifest.config.sharedClassifier, true);
  const steps = reference.ids.length - reference.promptIds.length;
  for (const stages of [1, 2]) {
    const pipeline = await LocalPipeline.create(dir, { stages, threaded: false });
    try {
      const run = await runGreedy(pipeline, reference.promptIds, steps, reference.vocab);
      const { error, row } = maxLogitError(run.logits, reference.logits, reference.vocab);
      t.ok(
        error < LOGIT_TOLERANCE,
        `${stages} stage(s): max |Δlogit| ${error.toExponential(2)} (position ${row}) < ${LOGIT_TOLERANCE}`,
      );
      t.same(run.ids, reference.ids, `${stages} stage(s): greedy ids over ${steps} steps`);
    } finally {
      await pipeline.close();
    }
  }
});

t.test(
  'import --bits 4 writes the bytes of import then quantize, and records the fp32 model',
  async (t) => {
    const root = t.testdir();
    const llama3Rope = join(import.meta.dirname, 'fixtures', 'hf-families', 'llama3-rope');
    const untied = join(import.meta.dirname, 'fixtures', 'hf-families', 'llama-linear-untied');
    const tiny = join(root, 'llama3-tiny');
    await synthesizeHfCheckpoint({ shape: 'llama3-tiny', seed: 3, fileBytes: 100_000, out: tiny });
    for (const [label, ckpt, tokenizer] of [
      ['synthetic, no tokenizer', tiny, false],
      ['with a tokenizer', llama3Rope, true],
      ['an untied head', untied, true],
    ] as const) {
      const fp32 = await importHf({ dir: ckpt, out: join(root, `${label}-fp32`), tokenizer });
      for (const head of [false, true]) {
        const what = `${label}${head ? ', LM head too' : ''}`;
        const twoSteps = await quantizeModel(fp32, {
          bits: 4,
          head,
          out: join(root, `${what}-q`),
        });
        const direct = await importHf({
          dir: ckpt,
          out: join(root, `${what}-direct`),
          tokenizer,
          quantize: head ? { bits: 4, head } : { bits: 4 },
        });
        t.equal(
          direct.manifest.weights.sha256,
          twoSteps.manifest.weights.sha256,
          `${what}: weights`,
        );
        t.same(direct.manifest.derivedFrom, twoSteps.manifest.derivedFrom, `${what}: derivation`);
        t.same(direct.manifest.config, twoSteps.manifest.config, `${what}: config`);
        t.equal(direct.manifest.modelHash, twoSteps.manifest.modelHash, `${what}: model hash`);
        t.equal(direct.manifest.name, twoSteps.manifest.name, `${what}: name`);
      }
    }
    await t.rejects(
      importHf({
        dir: tiny,
        out: join(root, 'bad-head'),
        tokenizer: false,
        quantize: { bits: 4, head: 'yes' as unknown as boolean },
      }),
      { code: 'SWARMBEE_ERR_INVALID_ARGUMENT', message: /quantize.head/ },
      'a head option that is not a boolean is refused',
    );
  },
);
