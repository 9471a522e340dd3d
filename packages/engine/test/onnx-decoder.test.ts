/**
 * The decoder engine on imported ONNX exports: greedy tokens and logits of every
 * split against the unsplit graph run directly with onnxruntime, micro-batches
 * whose rows differ in length, fp16 weights and caches, bad token ids, and the
 * factory that picks the engine from the shard's kind.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShardInvalidError, TokenOutOfVocabularyError } from '@swarmbee/core';
import { createStageEngine, generate, LocalPipeline, type Pipeline } from '@swarmbee/engine';
import {
  buildShard,
  evenRanges,
  importOnnxDecoder,
  type ModelDir,
  SYNTH_PRESETS,
  synthesizeModel,
} from '@swarmbee/model';
import t from 'tap';
import {
  DecoderReference,
  everySplit,
  GPT2_GOLDEN,
  maxAbsDiff,
} from '../../../test/helpers/gpt2-reference.js';
import { withFloat16 } from '../../../test/helpers/onnx-variants.js';
import { haveSharedModel, TINY_GPT2 } from '../../../test/helpers/shared-models.js';
import {
  buildSyntheticDecoder,
  SYNTHETIC_DECODER,
  SYNTHETIC_NAMING,
} from '../../../test/helpers/synthetic-decoder.js';
import { OnnxDecoderStage } from '../src/onnx-decoder-stage.js';
import { OrtStage } from '../src/ort-stage.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
/**
 * Stages against the unsplit graph. Measured: 1.2e-7 — the cache is fed with spare,
 * masked capacity, which changes the length of onnxruntime's softmax sums, not their terms.
 */
const LOGIT_TOLERANCE = 1e-5;
/** fp16 weights and cache against the fp32 export. Measured: 2.4e-4 on logits of about 0.5. */
const FP16_TOLERANCE = 1e-3;

/** Greedy decoding through `pipeline`, keeping each step's last-position logits (row by row). */
async function greedyWithLogits(
  pipeline: Pipeline,
  prompts: number[][],
  length: number,
): Promise<{ ids: number[][]; logits: Float32Array[] }> {
  const vocab = pipeline.info.vocabSize;
  const ids = prompts.map((p) => [...p]);
  const logits: Float32Array[] = [];
  const seq = prompts.map((_, i) => `greedy-${i}-${Math.random()}`);
  let cached = prompts.map(() => 0);
  while (ids[0]!.length < length) {
    const rows = ids.map((row, i) => ({
      seqId: seq[i]!,
      start: cached[i]!,
      count: row.length - cached[i]!,
      sampling: GREEDY,
    }));
    const width = Math.max(...rows.map((r) => r.count));
    const tokens = new BigInt64Array(rows.length * width);
    rows.forEach((row, r) => {
      for (let i = 0; i < row.count; i++) tokens[r * width + i] = BigInt(ids[r]![row.start + i]!);
    });
    const out = await pipeline.step({ rows, tokens, logits: 'last' });
    cached = ids.map((row) => row.length);
    ids.forEach((row, r) => {
      logits.push(out.logits!.slice(r * vocab, (r + 1) * vocab));
      row.push(out.tokens[r]!);
    });
  }
  await pipeline.release(seq);
  return { ids, logits };
}

function worstDiff(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(...a.map((x, i) => maxAbsDiff(x, b[i]!)));
}

async function importGpt2(root: string): Promise<ModelDir> {
  // Its tokenizer is GPT-2's whole vocabulary; the random model has 1,000 rows.
  return importOnnxDecoder({ model: TINY_GPT2.onnx, out: join(root, 'gpt2'), tokenizer: false });
}

t.test(
  'tiny-random-gpt2: every split (16 sets of cut points) gives the golden ids and the unsplit logits',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importGpt2(t.testdir());
    const reference = await DecoderReference.open(TINY_GPT2.onnx);
    const want = await reference.greedy(GPT2_GOLDEN.prompts, 10);
    await reference.close();
    t.same(want.ids, GPT2_GOLDEN.ids, 'the unsplit export itself gives the README ids');
    let worst = 0;
    for (const ranges of everySplit(5)) {
      const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
      try {
        const got = await greedyWithLogits(pipeline, GPT2_GOLDEN.prompts, 10);
        const label = ranges.map((r) => `${r.start}-${r.end}`).join(',');
        t.same(got.ids, GPT2_GOLDEN.ids, `split ${label}`);
        const diff = worstDiff(got.logits, want.logits);
        if (diff > LOGIT_TOLERANCE) t.fail(`split ${label}: logits differ by ${diff}`);
        worst = Math.max(worst, diff);
      } finally {
        await pipeline.close();
      }
    }
    t.ok(worst <= LOGIT_TOLERANCE, `largest logit difference over every split and step: ${worst}`);
  },
);

t.test(
  'threaded stages, every even split into 1..5, give the golden ids through generate()',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importGpt2(t.testdir());
    for (let stages = 1; stages <= 5; stages++) {
      const pipeline = await LocalPipeline.create(dir, { stages });
      try {
        const results = await generate(
          pipeline,
          GPT2_GOLDEN.prompts.map((promptIds) => ({ promptIds, steps: 9, sampling: GREEDY })),
          // Chunks of 3 split each 4-token prompt, so prefill crosses a chunk boundary too.
          { prefillChunkTokens: 3 },
        );
        t.same(
          results.map((r) => r.ids),
          GPT2_GOLDEN.ids,
          `${stages} stage(s)`,
        );
      } finally {
        await pipeline.close();
      }
    }
  },
);

t.test('rows of different lengths in one micro-batch get what each gets alone', async (t) => {
  if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
  const dir = await importGpt2(t.testdir());
  const pipeline = await LocalPipeline.create(dir, { ranges: evenRanges(5, 2), threaded: false });
  t.teardown(() => pipeline.close());
  const prompts = [[0, 0, 0, 52], [5, 6], [9, 8, 7, 6, 5, 4, 3], [731]];
  const request = (promptIds: number[]) => ({
    promptIds,
    steps: 14,
    sampling: GREEDY,
    logprobs: true,
  });
  const together = await generate(pipeline, prompts.map(request));
  for (const [i, promptIds] of prompts.entries()) {
    const [alone] = await generate(pipeline, [request(promptIds)]);
    t.same(together[i]!.ids, alone!.ids, `prompt of ${promptIds.length} tokens`);
    const diff = maxAbsDiff(
      Float32Array.from(together[i]!.logprobs),
      Float32Array.from(alone!.logprobs),
    );
    t.ok(diff <= LOGIT_TOLERANCE, `log-probabilities within ${diff}`);
  }
  t.equal(
    (await (pipeline as LocalPipeline).stages[0]!.stats()).sequences,
    0,
    'every cache released',
  );
});

t.test('fp16 weights and KV cache: stacked fp16 arenas, logits near the fp32 export', async (t) => {
  if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
  const root = t.testdir();
  const source = await withFloat16(TINY_GPT2.onnx, join(root, 'past-fp16.onnx'));
  const dir = await importOnnxDecoder({ model: source, out: join(root, 'm'), context: 512 });
  if (dir.manifest.architecture !== 'onnx-decoder') throw new Error('expected an imported decoder');
  t.equal(dir.manifest.config.weightDtype, 'float16');
  t.equal(dir.manifest.decoder.kv.dtype, 'float16');
  t.equal(dir.manifest.layers[0]!.kvBytesPerToken, 2 * 4 * 8 * 2, 'two bytes per cached element');
  const fp32 = await DecoderReference.open(TINY_GPT2.onnx);
  const fp16 = await DecoderReference.open(source);
  const want32 = await fp32.greedy(GPT2_GOLDEN.prompts, 10);
  const want16 = await fp16.greedy(GPT2_GOLDEN.prompts, 10);
  await Promise.all([fp32.close(), fp16.close()]);
  for (const ranges of [[{ start: 0, end: 5 }], evenRanges(5, 2), evenRanges(5, 5)]) {
    const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
    const got = await greedyWithLogits(pipeline, GPT2_GOLDEN.prompts, 10);
    await pipeline.close();
    t.same(got.ids, GPT2_GOLDEN.ids, `${ranges.length} stage(s): the golden ids`);
    const vsFp16 = worstDiff(got.logits, want16.logits);
    const vsFp32 = worstDiff(got.logits, want32.logits);
    t.ok(vsFp16 <= LOGIT_TOLERANCE, `against the unsplit fp16 graph: ${vsFp16}`);
    t.ok(vsFp32 <= FP16_TOLERANCE, `against the fp32 export: ${vsFp32}`);
  }
});

t.test(
  'an Optimum-style graph (separate K/V, int64 ids): every split matches the unsplit graph',
  async (t) => {
    const root = t.testdir();
    const source = join(root, 'decoder.onnx');
    await writeFile(source, buildSyntheticDecoder());
    const dir = await importOnnxDecoder({ model: source, out: join(root, 'm'), context: 64 });
    const reference = await DecoderReference.open(source, SYNTHETIC_NAMING);
    const prompts = [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ];
    const want = await reference.greedy(prompts, 12);
    await reference.close();
    for (const ranges of everySplit(SYNTHETIC_DECODER.layers)) {
      const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
      const got = await greedyWithLogits(pipeline, prompts, 12);
      await pipeline.close();
      t.same(got.ids, want.ids, `split ${ranges.map((r) => `${r.start}-${r.end}`).join(',')}`);
      const diff = worstDiff(got.logits, want.logits);
      t.ok(diff <= LOGIT_TOLERANCE, `logits within ${diff}`);
    }
  },
);

t.test(
  'BAD INPUT - token ids beyond the 1000-token vocabulary are coded errors, not onnxruntime crashes',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importGpt2(t.testdir());
    const stage = await createStageEngine(buildShard(dir, { start: 0, end: 5 }), {
      intraOpThreads: 1,
    });
    t.teardown(() => stage.close());
    for (const id of [1000n, 50256n, -1n]) {
      await t.rejects(
        stage.forward({
          rows: [{ seqId: 'a', start: 0, count: 2 }],
          tokens: BigInt64Array.of(5n, id),
        }),
        { code: TokenOutOfVocabularyError.code, message: /vocabulary of 1000/ },
        `token ${id}`,
      );
    }
    const ok = await stage.forward({
      rows: [{ seqId: 'a', start: 0, count: 1, sampling: GREEDY }],
      tokens: BigInt64Array.of(52n),
    });
    t.equal(ok.kind, 'tokens', 'the stage keeps serving');
    const pipeline = await LocalPipeline.create(dir, { stages: 2, threaded: false });
    t.teardown(() => pipeline.close());
    await t.rejects(generate(pipeline, [{ promptIds: [0, 50256], steps: 4, sampling: GREEDY }]), {
      code: TokenOutOfVocabularyError.code,
    });
  },
);

t.test('the factory picks the engine from the shard kind', async (t) => {
  const root = t.testdir();
  const llama = await synthesizeModel({
    config: SYNTH_PRESETS.tiny.config,
    seed: 1,
    out: join(root, 'l'),
  });
  const source = join(root, 'decoder.onnx');
  await writeFile(source, buildSyntheticDecoder());
  const decoder = await importOnnxDecoder({ model: source, out: join(root, 'd'), context: 64 });
  const a = await createStageEngine(buildShard(llama, { start: 0, end: 1 }), { intraOpThreads: 1 });
  const b = await createStageEngine(buildShard(decoder, { start: 0, end: 1 }), {
    intraOpThreads: 1,
  });
  t.ok(a instanceof OrtStage);
  t.ok(b instanceof OnnxDecoderStage);
  await Promise.all([a.close(), b.close()]);
  await t.rejects(OrtStage.create(buildShard(decoder, { start: 0, end: 1 })), {
    code: ShardInvalidError.code,
  });
});
