/**
 * stories260K published the Hugging Face way imports to the same model as its
 * llama2.c checkpoint: same weights, same greedy tokens through 1..5 stages, and
 * run.c's text through the HF tokenizer; fp16 and bf16 stay close.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GenerateResult, generate, LocalPipeline } from '@swarmbee/engine';
import { decodeIds, importHf, loadTokenizer, type ModelDir, type Tokenizer } from '@swarmbee/model';
import t from 'tap';
import { type HfFixtureDtype, writeHfStories260K } from './helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';
import { stories260kDir } from './helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
/** Both reference runs stop on run.c's terms (BOS), so the two imports are asked the same. */
const RUN_C_STOP = [1];

async function references(
  dir: ModelDir,
  tokenizer: Tokenizer,
  stages: number,
): Promise<GenerateResult[]> {
  const pipeline = await LocalPipeline.create(dir, { stages });
  try {
    return await generate(pipeline, [
      { promptIds: tokenizer.encode(''), steps: 200, sampling: GREEDY, stopIds: RUN_C_STOP },
      {
        promptIds: tokenizer.encode('Once upon a time'),
        steps: 64,
        sampling: GREEDY,
        stopIds: RUN_C_STOP,
      },
    ]);
  } finally {
    await pipeline.close();
  }
}

async function importFixture(root: string, dtype: HfFixtureDtype, shards = 1): Promise<ModelDir> {
  const source = join(root, `hf-${dtype}-${shards}`);
  await writeHfStories260K(source, { dtype, shards });
  return importHf({ dir: source, out: join(root, `model-${dtype}-${shards}`) });
}

/** Logits of every position of run.c's "Once upon a time" run, prefilled at once. */
async function referenceLogits(dir: ModelDir): Promise<Float32Array> {
  const ref = JSON.parse(await readFile(STORIES260K.refLogits, 'utf8')) as {
    positions: { in: number }[];
  };
  const ids = ref.positions.map((p) => p.in);
  const pipeline = await LocalPipeline.create(dir, { stages: 2 });
  try {
    const result = await pipeline.step({
      rows: [{ seqId: 'logits', start: 0, count: ids.length }],
      tokens: BigInt64Array.from(ids, BigInt),
      logits: 'all',
    });
    return result.logits!;
  } finally {
    await pipeline.close();
  }
}

t.test(
  'HF-layout stories260K (fp32) equals the llama2.c import: weights, tokens, text',
  async (t) => {
    const root = t.testdir();
    const llama2c = await stories260kDir(t, root);
    if (!llama2c) return;
    const single = await importFixture(root, 'F32');
    const sharded = await importFixture(root, 'F32', 3);
    t.equal(
      single.manifest.weights.sha256,
      llama2c.manifest.weights.sha256,
      "weights.bin is byte-identical to the llama2.c import's (HF's q/k permutation undone by none)",
    );
    t.equal(sharded.manifest.weights.sha256, llama2c.manifest.weights.sha256, 'sharded too');
    t.equal(single.manifest.tokenizer?.kind, 'hf');
    t.match(single.manifest.source, { kind: 'hf', architecture: 'LlamaForCausalLM' });
    t.equal(sharded.manifest.source.kind === 'hf' && sharded.manifest.source.weights.length, 3);

    const llamaTokenizer = await loadTokenizer(llama2c);
    const hfTokenizer = await loadTokenizer(single);
    t.same(hfTokenizer.stopIds, [2], 'stop ids from generation_config.json');
    const expected = await references(llama2c, llamaTokenizer, 1);
    for (const stages of [1, 2, 5]) {
      const got = await references(single, hfTokenizer, stages);
      t.same(got[0]!.ids, expected[0]!.ids, `${stages} stages: no prompt, 200 steps, same ids`);
      t.same(got[1]!.ids, expected[1]!.ids, `${stages} stages: "Once upon a time", same ids`);
    }
    const got = await references(sharded, await loadTokenizer(sharded), 3);
    t.same(got[1]!.ids, expected[1]!.ids, 'sharded checkpoint, 3 stages: same ids');
    // The HF tokenizer's text of those ids is run.c's text.
    t.equal(
      `${decodeIds(hfTokenizer, got[0]!.ids)}\n`,
      await readFile(STORIES260K.refNoPrompt, 'utf8'),
    );
    t.equal(
      `${decodeIds(hfTokenizer, got[1]!.ids)}\n`,
      await readFile(STORIES260K.refOnceUponATime, 'utf8'),
    );
  },
);

t.test('fp16 and bf16 checkpoints import to fp32 with logits close to fp32', async (t) => {
  if (!haveSharedModel(t, STORIES260K.refLogits)) return;
  const root = t.testdir();
  const fp32 = await importFixture(root, 'F32');
  const base = await referenceLogits(fp32);
  const expected = await references(fp32, await loadTokenizer(fp32), 1);
  // Measured on stories260K's 64 reference positions: fp16 max |Δlogit| 1.7e-2, bf16 1.2e-1
  // (logits span about ±15); greedy ids identical to fp32 for both.
  const tolerance = { F16: 0.05, BF16: 0.3 } as const;
  for (const dtype of ['F16', 'BF16'] as const) {
    const dir = await importFixture(root, dtype);
    t.equal(dir.manifest.weights.tensors[0]!.dtype, 'float32', `${dtype} stored as fp32`);
    const logits = await referenceLogits(dir);
    let maxError = 0;
    let argmaxAgree = 0;
    const vocab = 512;
    const positions = base.length / vocab;
    for (let p = 0; p < positions; p++) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < vocab; i++) {
        const at = p * vocab + i;
        maxError = Math.max(maxError, Math.abs(base[at]! - logits[at]!));
        if (base[at]! > base[p * vocab + a]!) a = i;
        if (logits[at]! > logits[p * vocab + b]!) b = i;
      }
      if (a === b) argmaxAgree++;
    }
    t.comment(
      `${dtype}: max |logit - fp32 logit| = ${maxError.toExponential(2)} over ${positions} positions; argmax agrees at ${argmaxAgree}/${positions}`,
    );
    t.ok(maxError < tolerance[dtype], `${dtype} logits within ${tolerance[dtype]} of fp32`);
    t.ok(argmaxAgree >= positions - 2, `${dtype} argmax agrees almost everywhere`);
    const got = await references(dir, await loadTokenizer(dir), 2);
    const text = decodeIds(await loadTokenizer(dir), got[1]!.ids);
    t.match(text, /^Once upon a time, there was a little/, `${dtype} generates sensible text`);
    const same = got[1]!.ids.filter((id, i) => id === expected[1]!.ids[i]).length;
    t.equal(same, expected[1]!.ids.length, `${dtype}: greedy "Once upon a time" ids equal fp32's`);
  }
});
