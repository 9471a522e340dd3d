/**
 * GGUF `qwen3` and `gemma3`, which the llama.cpp the other GGUF tests run (c392e509) predates:
 * the Hugging Face family fixtures written as GGUFs the way llama.cpp's converter writes them
 * (test/fixtures/gguf/make_family_ggufs.py, gguf-py 0.19.0: Gemma's norms with their +1, the
 * local RoPE base, the window, the soft-cap as keys), imported with `importGguf`, must give
 * transformers' logits (within 1e-4) and greedy ids on the original checkpoints
 * (test/fixtures/hf-families, transformers 5.18.0) in 1, 2 and 3 stages, and the same model
 * config the Hugging Face import makes; and a newer llama.cpp's ids and logits on the same files
 * (family-llamacpp.json, make_family_llamacpp_reference.mjs). Their Q8_0 versions map without
 * loss and give llama.cpp's ids. What llama.cpp would compute otherwise is refused.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GgufInvalidError, type LlamaConfig, ModelUnsupportedError } from '@swarmbee/core';
import { LocalPipeline } from '@swarmbee/engine';
import { importGguf, importHf } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { GGUF_FIXTURES_DIR } from './helpers/gguf-fixtures.js';
import { readGgufLayout, setKv, writeGguf } from './helpers/gguf-writer.js';
import {
  HF_FAMILIES_DIR,
  maxLogitError,
  readFamilyReference,
  runGreedy,
} from './helpers/hf-families.js';

const LOGIT_TOLERANCE = 1e-4;
const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const FAMILY_GGUFS = ['qwen3-qknorm', 'gemma3-pattern6'] as const;
/**
 * How far llama.cpp's logits may be from SwarmBee's: float32 rounding for qwen3; for gemma3,
 * ggml's CPU GELU, which looks its result up in a table indexed by the input rounded to fp16,
 * puts llama.cpp itself 2.2e-3 from transformers (SwarmBee: 2.8e-6).
 */
const LLAMA_CPP_TOLERANCE = { 'qwen3-qknorm': 1e-4, 'gemma3-pattern6': 5e-3 } as const;

const record = JSON.parse(readFileSync(join(GGUF_FIXTURES_DIR, 'family-ggufs.json'), 'utf8')) as {
  gguf: string;
  files: Record<string, { architecture: string; sha256: string; dequantizedReference?: string }>;
};

const llamaCpp = JSON.parse(
  readFileSync(join(GGUF_FIXTURES_DIR, 'family-llamacpp.json'), 'utf8'),
) as {
  nodeLlamaCpp: string;
  llamaCpp: { release: string };
  files: Record<string, { promptIds: number[]; greedyIds: number[] }>;
};

function readLogits(file: string): Float32Array {
  const bytes = readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** A config with its epsilon as the GGUF's float32 holds it. */
function comparable(config: LlamaConfig): LlamaConfig {
  return { ...config, normEps: Math.fround(config.normEps) };
}

for (const name of FAMILY_GGUFS) {
  t.test(`${name}.gguf: transformers' logits and ids in 1, 2 and 3 stages`, async (t) => {
    const file = join(GGUF_FIXTURES_DIR, `${name}.gguf`);
    const made = record.files[`${name}.gguf`]!;
    t.equal(record.gguf, '0.19.0', 'written by gguf-py 0.19.0');
    t.equal(
      createHash('sha256').update(readFileSync(file)).digest('hex'),
      made.sha256,
      'the file make_family_ggufs.py wrote',
    );
    const reference = await readFamilyReference(name);
    t.equal(reference.transformers, '5.18.0', 'reference made by transformers 5.18.0');
    const root = t.testdir();
    const dir = await importGguf({ file, out: join(root, 'gguf') });
    const source = dir.manifest.source;
    t.equal(source.kind === 'gguf' && source.architecture, made.architecture);
    const hf = await importHf({ dir: join(HF_FAMILIES_DIR, name), out: join(root, 'hf') });
    t.same(
      comparable(dir.manifest.config),
      comparable(hf.manifest.config),
      'the same model config as the Hugging Face import',
    );
    const steps = reference.ids.length - reference.promptIds.length;
    const cpp = llamaCpp.files[`${name}.gguf`]!;
    const cppLogits = readLogits(join(GGUF_FIXTURES_DIR, `${name}.llamacpp-logits.f32`));
    t.same(cpp.promptIds, reference.promptIds, "llama.cpp's run has the same prompt");
    for (const stages of [1, 2, 3]) {
      const pipeline = await LocalPipeline.create(dir, { stages, threaded: false });
      try {
        const run = await runGreedy(pipeline, reference.promptIds, steps, reference.vocab);
        const { error, row } = maxLogitError(run.logits, reference.logits, reference.vocab);
        t.ok(
          error < LOGIT_TOLERANCE,
          `${stages} stage(s): max |Δlogit| ${error.toExponential(2)} (position ${row}) < ${LOGIT_TOLERANCE}`,
        );
        t.same(run.ids, reference.ids, `${stages} stage(s): greedy ids over ${steps} steps`);
        t.same(
          run.ids.slice(reference.promptIds.length),
          cpp.greedyIds,
          `${stages} stage(s): llama.cpp's greedy ids (node-llama-cpp ${llamaCpp.nodeLlamaCpp}, llama.cpp ${llamaCpp.llamaCpp.release})`,
        );
        const fromCpp = maxLogitError(run.logits, cppLogits, reference.vocab);
        t.ok(
          fromCpp.error < LLAMA_CPP_TOLERANCE[name],
          `${stages} stage(s): max |Δlogit| from llama.cpp ${fromCpp.error.toExponential(2)} (position ${fromCpp.row}) < ${LLAMA_CPP_TOLERANCE[name]}`,
        );
      } finally {
        await pipeline.close();
      }
    }
  });
}

/** Logits of every position of `ids` but the last, from one prefill. */
async function teacherForced(pipeline: LocalPipeline, ids: number[]): Promise<Float32Array> {
  const seq = ids.slice(0, -1);
  const result = await pipeline.step({
    rows: [{ seqId: 'teacher', start: 0, count: seq.length, sampling: GREEDY }],
    tokens: BigInt64Array.from(seq, BigInt),
    logits: 'all',
  });
  await pipeline.release(['teacher']);
  return result.logits!;
}

/**
 * Q8_0 maps onto int8 MatMulNBits without loss, for these architectures as for llama: with
 * float activations the Q8_0 files give transformers' logits over the checkpoint whose
 * matrices gguf-py dequantized from them; with int8 activations (the default, as llama.cpp's
 * kernels quantize them) llama.cpp's greedy ids on the same file. The logits then differ from
 * llama.cpp's by its and SwarmBee's activation rounding, the size of the gap between either and
 * float activations (~0.1–0.2).
 */
const Q8_0_ACTIVATION_GAP = 0.3;

for (const name of FAMILY_GGUFS) {
  t.test(`${name}-q8_0.gguf: mapped without loss; llama.cpp's greedy ids`, async (t) => {
    const file = join(GGUF_FIXTURES_DIR, `${name}-q8_0.gguf`);
    const made = record.files[`${name}-q8_0.gguf`]!;
    t.equal(
      createHash('sha256').update(readFileSync(file)).digest('hex'),
      made.sha256,
      'the file make_family_ggufs.py wrote',
    );
    const reference = await readFamilyReference(name);
    const root = t.testdir();
    const exact = await importGguf({ file, out: join(root, 'exact'), activations: 'float32' });
    const source = exact.manifest.source;
    const matrices =
      source.kind === 'gguf' ? source.tensors.filter((x) => x.stored !== 'fp32') : [];
    t.ok(
      matrices.length > 0 &&
        matrices.every(
          (x) => x.stored === 'int8' && x.from.every((f) => f.conversion === 'mapped'),
        ),
      `every matrix stored int8, mapped from Q8_0 (${matrices.length})`,
    );
    const dequantized = readLogits(join(GGUF_FIXTURES_DIR, made.dequantizedReference!));
    let pipeline = await LocalPipeline.create(exact, { stages: 2, threaded: false });
    try {
      const { error, row } = maxLogitError(
        await teacherForced(pipeline, reference.ids),
        dequantized,
        reference.vocab,
      );
      t.ok(
        error < LOGIT_TOLERANCE,
        `float activations: max |Δlogit| from transformers over the dequantized weights ${error.toExponential(2)} (position ${row}) < ${LOGIT_TOLERANCE}`,
      );
    } finally {
      await pipeline.close();
    }

    const dir = await importGguf({ file, out: join(root, 'int8') });
    const cpp = llamaCpp.files[`${name}-q8_0.gguf`]!;
    const cppLogits = readLogits(join(GGUF_FIXTURES_DIR, `${name}-q8_0.llamacpp-logits.f32`));
    for (const stages of [1, 2]) {
      pipeline = await LocalPipeline.create(dir, { stages, threaded: false });
      try {
        const steps = cpp.greedyIds.length;
        const run = await runGreedy(pipeline, cpp.promptIds, steps, reference.vocab);
        t.same(
          run.ids.slice(cpp.promptIds.length),
          cpp.greedyIds,
          `${stages} stage(s), int8 activations: llama.cpp's ${steps} greedy ids`,
        );
        const { error, row } = maxLogitError(
          await teacherForced(pipeline, reference.ids),
          cppLogits,
          reference.vocab,
        );
        t.ok(
          error < Q8_0_ACTIVATION_GAP,
          `${stages} stage(s): max |Δlogit| from llama.cpp ${error.toExponential(2)} (position ${row}) < ${Q8_0_ACTIVATION_GAP}`,
        );
      } finally {
        await pipeline.close();
      }
    }
  });
}

t.test('gemma3: the hyper-parameters as llama.cpp sets them', async (t) => {
  const dir = await importGguf({
    file: join(GGUF_FIXTURES_DIR, 'gemma3-pattern6.gguf'),
    out: join(t.testdir(), 'model'),
  });
  const c = dir.manifest.config;
  t.same(
    c.layerAttention,
    ['sliding', 'sliding', 'sliding', 'sliding', 'sliding', 'full'],
    'every sixth layer global',
  );
  t.equal(c.slidingWindow, 6, 'gemma3.attention.sliding_window');
  t.same(c.localRope, { theta: 10_000 }, 'local RoPE base 10000, unscaled');
  t.equal(c.ropeTheta, 1e6, 'global base: rope.freq_base');
  t.same(c.ropeScaling, { type: 'linear', factor: 8 }, 'linear scaling on the global layers');
  t.equal(c.embeddingScale, Math.fround(Math.sqrt(32)), 'embedding × √dim in float32');
  t.equal(c.attentionScale, 0.25, 'queries × key_length^-½');
  t.equal(c.finalLogitSoftcap, 5, 'gemma3.final_logit_softcapping');
  t.ok(
    c.postNorms && c.qkNorm && c.activation === 'gelu-tanh' && c.sharedClassifier,
    'post-norms, q/k norms, GELU-tanh, tied embedding',
  );
});

/** Imports the fixture written back with an edit. */
async function importEdited(
  t: Test,
  name: (typeof FAMILY_GGUFS)[number],
  edit: (layout: Awaited<ReturnType<typeof readGgufLayout>>) => void,
): Promise<unknown> {
  const layout = await readGgufLayout(join(GGUF_FIXTURES_DIR, `${name}.gguf`));
  edit(layout);
  const root = t.testdir();
  const file = join(root, 'edited.gguf');
  await writeGguf(file, layout);
  return await importGguf({ file, out: join(root, 'out') });
}

t.test('BAD INPUT - what llama.cpp would compute otherwise is refused by name', async (t) => {
  await t.rejects(
    importEdited(t, 'gemma3-pattern6', (l) =>
      setKv(l, { key: 'gemma3.rope.freq_base_swa', type: 'float32', value: 20_000 }),
    ),
    { code: ModelUnsupportedError.code, message: /gemma3\.rope\.freq_base_swa is 20000/ },
    'a local RoPE base llama.cpp would not use',
  );
  await t.rejects(
    importEdited(t, 'gemma3-pattern6', (l) =>
      setKv(l, { key: 'gemma3.attention.sliding_window_pattern', type: 'uint32', value: 2 }),
    ),
    {
      code: ModelUnsupportedError.code,
      message: /key gemma3\.attention\.sliding_window_pattern = 2 is not one SwarmBee reads/,
    },
    'a key SwarmBee does not read',
  );
  await t.rejects(
    importEdited(t, 'gemma3-pattern6', (l) =>
      setKv(l, { key: 'gemma3.attn_logit_softcapping', type: 'float32', value: 50 }),
    ),
    { code: ModelUnsupportedError.code, message: /gemma3\.attn_logit_softcapping is 50/ },
    'attention soft-capping',
  );
  await t.rejects(
    importEdited(t, 'qwen3-qknorm', (l) =>
      setKv(l, { key: 'qwen3.final_logit_softcapping', type: 'float32', value: 30 }),
    ),
    { code: ModelUnsupportedError.code, message: /qwen3\.final_logit_softcapping is 30/ },
    'soft-capping outside gemma3',
  );
  await t.rejects(
    importEdited(t, 'qwen3-qknorm', (l) => {
      l.tensors = l.tensors.filter((x) => x.name !== 'blk.1.attn_k_norm.weight');
    }),
    { code: GgufInvalidError.code, message: /tensor blk\.1\.attn_k_norm\.weight is missing/ },
    'a missing q/k norm',
  );
  await t.rejects(
    importEdited(t, 'qwen3-qknorm', (l) => {
      const norm = l.tensors.find((x) => x.name === 'blk.0.ffn_norm.weight')!;
      l.tensors.push({ ...norm, name: 'blk.0.post_ffw_norm.weight' });
    }),
    {
      code: ModelUnsupportedError.code,
      message: /tensor blk\.0\.post_ffw_norm\.weight has no place in the qwen3 graph/,
    },
    'a gemma3 post-norm in a qwen3 file',
  );
});
