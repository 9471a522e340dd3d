/**
 * Quantized and pruned stories260K: fidelity measured (not assumed) against fp32 on the
 * bundled corpus, and every such model loads, splits at any cut and generates the same
 * tokens split as unsplit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generate, LocalPipeline } from '@swarmbee/engine';
import {
  importLlama2c,
  type LayerRange,
  type LlamaModelDir,
  loadTokenizer,
  type ModelDir,
  pruneModel,
  quantizeModel,
} from '@swarmbee/model';
import {
  blockInfluence,
  choosePrune,
  measureLayerFidelity,
  measureLayerSimilarity,
  modelFidelity,
  type ReferenceRun,
  referenceRun,
} from '@swarmbee/optimize';
import t, { type Test } from 'tap';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** Every way to cut `n` layers into contiguous stages (2^(n-1) of them). */
function everySplit(n: number): LayerRange[][] {
  const splits: LayerRange[][] = [];
  for (let mask = 0; mask < 2 ** (n - 1); mask++) {
    const ranges: LayerRange[] = [];
    let start = 0;
    for (let cut = 1; cut < n; cut++) {
      if (mask & (1 << (cut - 1))) {
        ranges.push({ start, end: cut });
        start = cut;
      }
    }
    ranges.push({ start, end: n });
    splits.push(ranges);
  }
  return splits;
}

async function greedyIds(dir: ModelDir, ranges: LayerRange[], prompt: number[]): Promise<number[]> {
  const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
  try {
    const [out] = await generate(pipeline, [{ promptIds: prompt, steps: 40, sampling: GREEDY }]);
    return out!.ids;
  } finally {
    await pipeline.close();
  }
}

/** The same greedy tokens at every split as unsplit. */
async function checkEverySplit(t: Test, dir: ModelDir, prompt: number[]): Promise<void> {
  const n = dir.manifest.config.nLayers;
  const whole = await greedyIds(dir, [{ start: 0, end: n }], prompt);
  t.ok(whole.length > prompt.length + 10, `${dir.manifest.name} generates`);
  for (const ranges of everySplit(n).slice(1)) {
    const ids = await greedyIds(dir, ranges, prompt);
    t.same(
      ids,
      whole,
      `${dir.manifest.name} split ${ranges.map((r) => `${r.start}-${r.end}`).join(',')}`,
    );
  }
}

let base: LlamaModelDir;
let run: ReferenceRun;
const root = t.testdir();

t.before(async () => {
  if (!existsSync(STORIES260K.checkpoint)) return;
  base = await importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out: join(root, 'fp32'),
  });
  run = await referenceRun(base);
});

t.test('int8 agrees with fp32 on >= 98% of next tokens; int4 is measured and sane', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const scratch = t.testdir();
  const positions = run.corpus.predictions;
  t.ok(positions >= 1000, `${positions} predicted tokens in the bundled corpus`);
  const int8 = await quantizeModel(base, { bits: 8, out: join(scratch, 'int8') });
  const int4 = await quantizeModel(base, { bits: 4, out: join(scratch, 'int4') });
  const f8 = await modelFidelity(int8, run);
  const f4 = await modelFidelity(int4, run);
  t.comment(
    `int8: KL ${f8.kl.toFixed(5)}, top-1 ${f8.top1.toFixed(4)}, ppl ${f8.perplexity.toFixed(3)}`,
  );
  t.comment(
    `int4: KL ${f4.kl.toFixed(5)}, top-1 ${f4.top1.toFixed(4)}, ppl ${f4.perplexity.toFixed(3)}`,
  );
  t.ok(f8.top1 >= 0.98, `int8 top-1 ${f8.top1}`);
  t.ok(f4.top1 > 0.5 && f4.top1 < 1, `int4 top-1 ${f4.top1}`);
  for (const f of [f8, f4]) {
    t.equal(f.positions, positions, 'every corpus prediction compared');
    t.ok(f.kl > 0 && Number.isFinite(f.kl) && f.klP99 >= f.kl);
    t.ok(Math.abs(f.referencePerplexity - run.reference.perplexity) < 1e-9);
  }
  t.ok(f4.kl > 10 * f8.kl, 'int4 diverges more than int8');
  t.ok(f4.perplexity > f8.perplexity, 'and is more perplexed by the text');
  const self = await modelFidelity(base, run);
  t.ok(self.kl < 1e-6 && self.top1 === 1, 'fp32 against itself: no divergence');
});

t.test(
  'quantized, mixed-precision and pruned models generate the same at every split',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const scratch = t.testdir();
    const prompt = (await loadTokenizer(base)).encode('Once upon a time');
    const int4 = await quantizeModel(base, { bits: 4, out: join(scratch, 'int4') });
    const mixed = await quantizeModel(
      await quantizeModel(base, { bits: 4, layers: [0, 1], out: join(scratch, 'm4') }),
      { bits: 8, layers: [3, 4], out: join(scratch, 'm48') },
    );
    t.same(
      mixed.manifest.layers.map((l) => l.precision ?? 'fp32'),
      ['int4', 'int4', 'fp32', 'int8', 'int8'],
    );
    const pruned = await pruneModel(mixed, { drop: [2], out: join(scratch, 'pruned') });
    for (const dir of [int4, mixed, pruned]) await checkEverySplit(t, dir, prompt);
  },
);

t.test('pruning ranks layers by Block Influence and measures what dropping costs', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const scratch = t.testdir();
  const similarity = await measureLayerSimilarity(base, run.corpus);
  const influence = blockInfluence(similarity);
  t.equal(influence.length, 5);
  for (const bi of influence) t.ok(bi > 0 && bi < 1, `BI ${bi}`);
  for (let i = 0; i <= 5; i++) {
    for (let j = i + 1; j <= 5; j++) t.ok(Math.abs(similarity.cosine[i]![j]!) <= 1 + 1e-9);
  }
  const one = await choosePrune(base, run.reference, similarity, 1);
  const lowest = influence.indexOf(Math.min(...influence));
  t.same(one.chosen.drop, [lowest], 'one layer: the least influential');
  const two = await choosePrune(base, run.reference, similarity, 2);
  t.equal(two.chosen.drop.length, 2);
  t.ok(
    two.candidates.every(
      (c) => c.fidelity.kl > 0 && c.fidelity.positions === run.corpus.predictions,
    ),
  );
  t.ok(two.chosen.fidelity.kl === Math.min(...two.candidates.map((c) => c.fidelity.kl)));
  t.ok(two.chosen.fidelity.kl > one.chosen.fidelity.kl, 'two layers cost more than one');
  // The variant measured in memory is the model dir written.
  const dir = await pruneModel(base, { drop: one.chosen.drop, out: join(scratch, 'p1') });
  const written = await modelFidelity(dir, run);
  t.ok(Math.abs(written.kl - one.chosen.fidelity.kl) < 1e-9);
  await t.rejects(choosePrune(base, run.reference, similarity, 5), {
    code: 'SWARMBEE_ERR_PRUNE_INVALID',
  });
});

t.test('per-layer fidelity is measured once and cached', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const scratch = t.testdir();
  const cacheDir = join(scratch, 'fidelity-cache');
  const started = performance.now();
  const table = await measureLayerFidelity(base, run.reference, { cacheDir });
  const measuredMs = performance.now() - started;
  t.equal(table.quantized.int8?.length, 5);
  t.equal(table.quantized.int4?.length, 5);
  t.equal(table.dropped?.length, 5);
  for (const l of [0, 1, 2, 3, 4]) {
    t.ok(table.quantized.int8![l]!.kl < table.quantized.int4![l]!.kl, `layer ${l}: int8 < int4`);
    t.ok(table.quantized.int4![l]!.kl < table.dropped![l]!.kl, `layer ${l}: int4 < drop`);
  }
  const again = performance.now();
  t.same(await measureLayerFidelity(base, run.reference, { cacheDir }), table);
  t.ok(performance.now() - again < measuredMs / 4, 'the second call reads the cache');
});
