import { readFile } from 'node:fs/promises';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { decodeIds, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

interface RefPosition {
  pos: number;
  in: number;
  argmax: number;
  logit_argmax: number;
  logits0_7: number[];
}

t.test('stories260K greedy output equals run.c for every split into 1..5 stages', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const refNoPrompt = await readFile(STORIES260K.refNoPrompt, 'utf8');
  const refOnce = await readFile(STORIES260K.refOnceUponATime, 'utf8');
  for (let stages = 1; stages <= 5; stages++) {
    const pipeline = await LocalPipeline.create(dir, { stages });
    try {
      const [noPrompt] = await generate(pipeline, [
        { promptIds: tokenizer.encode(''), steps: 200, sampling: GREEDY, stopIds: [1] },
      ]);
      const [once] = await generate(pipeline, [
        {
          promptIds: tokenizer.encode('Once upon a time'),
          steps: 64,
          sampling: GREEDY,
          stopIds: [1],
        },
      ]);
      // run.c ends its output with a newline.
      t.equal(
        `${decodeIds(tokenizer, noPrompt!.ids)}\n`,
        refNoPrompt,
        `${stages} stages, no prompt, 200 steps`,
      );
      t.equal(
        `${decodeIds(tokenizer, once!.ids)}\n`,
        refOnce,
        `${stages} stages, "Once upon a time", 64 steps`,
      );
    } finally {
      await pipeline.close();
    }
  }
});

t.test(
  'stories260K logits match run.c to 1e-4, decoding token by token and prefilling at once',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.refLogits)) return;
    const dir = await stories260kDir(t);
    if (!dir) return;
    const ref = JSON.parse(await readFile(STORIES260K.refLogits, 'utf8')) as {
      positions: RefPosition[];
    };
    const ids = ref.positions.map((p) => p.in);
    const vocab = dir.manifest.config.vocabSize;
    const check = (label: string, logits: Float32Array, expected: RefPosition) => {
      let argmax = 0;
      for (let i = 1; i < vocab; i++) if (logits[i]! > logits[argmax]!) argmax = i;
      t.equal(argmax, expected.argmax, `${label}: argmax at position ${expected.pos}`);
      const errors = expected.logits0_7.map((v, i) => Math.abs(v - logits[i]!));
      errors.push(Math.abs(expected.logit_argmax - logits[argmax]!));
      t.ok(
        Math.max(...errors) < 1e-4,
        `${label}: logits at position ${expected.pos} within 1e-4 (max error ${Math.max(...errors).toExponential(2)})`,
      );
    };
    for (const stages of [1, 3]) {
      const pipeline = await LocalPipeline.create(dir, { stages });
      try {
        for (const [pos, expected] of ref.positions.entries()) {
          const result = await pipeline.step({
            rows: [{ seqId: 'decode', start: pos, count: 1 }],
            tokens: BigInt64Array.of(BigInt(ids[pos]!)),
            logits: 'last',
          });
          check(`${stages} stages, decode`, result.logits!, expected);
        }
        const all = await pipeline.step({
          rows: [{ seqId: 'prefill', start: 0, count: ids.length }],
          tokens: BigInt64Array.from(ids, BigInt),
          logits: 'all',
        });
        for (const [pos, expected] of ref.positions.entries())
          check(
            `${stages} stages, prefill`,
            all.logits!.subarray(pos * vocab, (pos + 1) * vocab),
            expected,
          );
      } finally {
        await pipeline.close();
      }
    }
  },
);
