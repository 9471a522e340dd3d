/**
 * A chunk of several tokens is fed its rows' pasts copied up to the longest one, not the
 * arena's whole capacity (ort-stage.ts): the logits must be those of the whole prompt in one
 * pass, whatever the chunking and however the rows' starts differ within a micro-batch.
 */
import { createStageEngine } from '@swarmbee/engine';
import { buildShard } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { pastPrefix } from '../src/kv-rows.js';

t.test('pastPrefix copies the first positions of every (row, head) line', async (t) => {
  // 2 lines, capacity 3, head dim 2: line 0 holds 0..5, line 1 holds 6..11.
  const arena = Float32Array.from({ length: 12 }, (_, i) => i);
  t.same([...pastPrefix(arena, 2, 3, 2, 2)], [0, 1, 2, 3, 6, 7, 8, 9]);
  const half = Uint16Array.from({ length: 12 }, (_, i) => 100 + i);
  const copy = pastPrefix(half, 2, 3, 2, 1);
  t.ok(copy instanceof Uint16Array, 'fp16 caches stay raw 16-bit words');
  t.same([...copy], [100, 101, 106, 107]);
});

t.test('chunked prefill of ragged rows gives the logits of one whole pass', async (t) => {
  const model = await stories260kDir(t);
  if (!model) return;
  const stage = await createStageEngine(
    buildShard(model, { start: 0, end: model.manifest.config.nLayers }),
    { intraOpThreads: 1 },
  );
  t.teardown(() => stage.close());
  const vocab = stage.info.vocabSize;
  const prompt = (seed: number, n: number) =>
    Array.from({ length: n }, (_, i) => BigInt(2 + ((seed * 31 + i * 7) % (vocab - 2))));
  const prompts = [prompt(1, 30), prompt(2, 30), prompt(3, 30)];
  const greedy = { temperature: 0, topK: 0, topP: 1 };
  const lastLogits = (out: Awaited<ReturnType<typeof stage.forward>>, row: number) => {
    if (out.kind !== 'tokens' || !out.logits) throw new Error('expected logits');
    return out.logits.subarray(row * vocab, (row + 1) * vocab);
  };

  // Reference: each prompt alone, in one pass.
  const whole: Float32Array[] = [];
  for (const [i, ids] of prompts.entries()) {
    const out = await stage.forward({
      rows: [{ seqId: `whole-${i}`, start: 0, count: ids.length, sampling: greedy }],
      tokens: BigInt64Array.from(ids),
      logits: 'last',
    });
    whole.push(Float32Array.from(lastLogits(out, 0)));
  }
  await stage.release(prompts.map((_, i) => `whole-${i}`));

  // The same prompts in chunks of 6, each row a different number of chunks ahead: rows 1
  // and 2 first take 6 and 12 tokens alone, then all three move on in shared micro-batches.
  const done = [0, 0, 0];
  const step = async (which: number[]) => {
    const rows = which.map((r) => ({
      seqId: `chunked-${r}`,
      start: done[r]!,
      count: 6,
      sampling: greedy,
    }));
    const tokens = BigInt64Array.from(
      which.flatMap((r) => prompts[r]!.slice(done[r]!, done[r]! + 6)),
    );
    const out = await stage.forward({ rows, tokens, logits: 'last' });
    for (const r of which) done[r] = done[r]! + 6;
    return out;
  };
  await step([1, 2]);
  await step([2]);
  const finals = new Map<number, Float32Array>();
  for (let guard = 0; guard < 10 && done.some((d) => d < 30); guard++) {
    const which = [0, 1, 2].filter((r) => done[r]! < 30);
    const out = await step(which);
    for (const [i, r] of which.entries())
      if (done[r] === 30) finals.set(r, Float32Array.from(lastLogits(out, i)));
  }
  for (const r of [0, 1, 2]) {
    const chunked = finals.get(r)!;
    let worst = 0;
    for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(chunked[v]! - whole[r]![v]!));
    t.ok(worst < 1e-4, `row ${r}: chunked logits within ${worst.toExponential(1)} of one pass`);
    t.equal(argmax(chunked), argmax(whole[r]!), `row ${r}: the same greedy token`);
  }
});

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
