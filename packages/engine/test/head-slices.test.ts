/**
 * An fp32 LM head larger than `headChunkBytes` is multiplied in slices of rows (so loading
 * never holds a 1 GB head twice): the logits and greedy tokens are the unsliced head's.
 */
import { buildShard } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { OrtStage } from '../src/ort-stage.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

t.test('a head sliced into 4 Gemms gives the logits of one', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const { dim, vocabSize, nLayers } = dir.manifest.config;
  // 512 rows of 64 fp32 = 128 KiB: slices of 156 rows, the last one shorter.
  const headChunkBytes = 156 * dim * 4;
  const range = { start: 2, end: nLayers };
  const whole = buildShard(dir, range);
  const sliced = buildShard(dir, range, { headChunkBytes });
  t.not(Buffer.compare(whole.onnx, sliced.onnx), 0, 'another graph');
  t.ok(vocabSize * dim * 4 > headChunkBytes);
  const a = await OrtStage.create(whole, { intraOpThreads: 1 });
  const b = await OrtStage.create(sliced, { intraOpThreads: 1 });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const prompt = 9;
  const hidden = Float32Array.from({ length: prompt * dim }, (_, i) => Math.sin(i * 0.37));
  let worst = 0;
  for (let step = 0; step < 4; step++) {
    const count = step === 0 ? prompt : 1;
    const start = step === 0 ? 0 : prompt + step - 1;
    const input = step === 0 ? hidden : hidden.subarray(step * dim, (step + 1) * dim);
    const rows = [{ seqId: 's', start, count, sampling: GREEDY }];
    const x = await a.forward({ rows, hidden: input.slice(), logits: 'all' });
    const y = await b.forward({ rows, hidden: input.slice(), logits: 'all' });
    if (x.kind !== 'tokens' || y.kind !== 'tokens') throw new Error('the last stage samples');
    t.equal(y.logits!.length, count * vocabSize);
    for (let i = 0; i < x.logits!.length; i++)
      worst = Math.max(worst, Math.abs(x.logits![i]! - y.logits![i]!));
    t.equal(y.tokens[0], x.tokens[0], `step ${step}: same greedy token`);
  }
  t.ok(worst <= 1e-5, `max |Δlogit| ${worst}`);
});
