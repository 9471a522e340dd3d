/**
 * A shard cut to the context a deployment serves: RoPE tables of that many positions (not
 * the model's whole context, 131 072 for Llama 3), the same logits (to fp32 rounding) and
 * tokens as the whole-context shard at every position it holds, a position beyond it refused with a coded error, and hashes that
 * tell the two apart.
 */
import { join } from 'node:path';
import { ContextOverflowError, InvalidArgumentError } from '@swarmbee/core';
import { buildShard, openShard, writeShard } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { OrtStage } from '../src/ort-stage.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const CONTEXT = 40;
/** Max |Δlogit| between the whole-context and the cut shard (fp32 rounding). */
const LOGIT_TOLERANCE = 1e-5;

t.test('a context-cut shard gives the same logits, and refuses a position beyond', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const { config } = dir.manifest;
  const range = { start: 0, end: config.nLayers };
  const wholeGraph = buildShard(dir, range);
  const cutGraph = buildShard(dir, range, { context: CONTEXT });
  t.equal(cutGraph.config.maxSeqLen, CONTEXT, "the shard's config says what it serves");
  // Each RoPE table loses (512 − 40) rows of hd/2 fp32 values: cos and sin.
  const tableBytes = (config.maxSeqLen - CONTEXT) * (config.dim / config.nHeads / 2) * 4 * 2;
  t.ok(
    wholeGraph.onnx.length - cutGraph.onnx.length >= tableBytes,
    `graph ${wholeGraph.onnx.length} → ${cutGraph.onnx.length} B (tables ${tableBytes} B fewer)`,
  );
  const whole = await OrtStage.create(wholeGraph, { intraOpThreads: 1 });
  const cut = await OrtStage.create(cutGraph, { intraOpThreads: 1 });
  t.teardown(async () => {
    await whole.close();
    await cut.close();
  });
  t.equal(cut.info.maxSeqLen, CONTEXT);
  let tokens = BigInt64Array.from([1n, 403n, 407n, 261n, 378n]);
  let start = 0;
  while (start + tokens.length <= CONTEXT) {
    const rows = [{ seqId: 's', start, count: tokens.length, sampling: GREEDY }];
    const a = await whole.forward({ rows, tokens: tokens.slice(), logits: 'last' });
    const b = await cut.forward({ rows, tokens: tokens.slice(), logits: 'last' });
    if (a.kind !== 'tokens' || b.kind !== 'tokens') throw new Error('the last stage samples');
    // The same products; attention over a cache of another capacity (the cut shard's arena
    // stops growing at its context) may add the masked slots' zeros in another order, so the
    // last bits may differ on CPUs whose kernels vectorize by length: 1e-5 is fp32 rounding.
    const worst = a.logits!.reduce((m, v, i) => Math.max(m, Math.abs(v - b.logits![i]!)), 0);
    if (worst > LOGIT_TOLERANCE || a.tokens[0] !== b.tokens[0]) {
      t.fail(
        `position ${start}: logits differ by ${worst}, tokens ${a.tokens[0]} / ${b.tokens[0]}`,
      );
      return;
    }
    start += tokens.length;
    tokens = BigInt64Array.of(BigInt(a.tokens[0]!));
  }
  t.equal(start, CONTEXT, 'every position of the cut context fed, the same logits and tokens');
  await t.rejects(
    cut.forward({
      rows: [{ seqId: 'over', start: 0, count: CONTEXT + 1, sampling: GREEDY }],
      tokens: new BigInt64Array(CONTEXT + 1).fill(5n),
      logits: 'last',
    }),
    { code: ContextOverflowError.code, message: /beyond the model's context of 40/ },
  );
  t.throws(() => buildShard(dir, range, { context: config.maxSeqLen + 1 }), {
    code: InvalidArgumentError.code,
    message: /no larger than the model's 512/,
  });
});

t.test('a written context-cut shard records its context and another content address', async (t) => {
  const root = t.testdir();
  const dir = await stories260kDir(t, root);
  if (!dir) return;
  const range = { start: 1, end: 3 };
  const cut = await writeShard(dir, range, join(root, 'cut'), undefined, { context: CONTEXT });
  const whole = await writeShard(dir, range, join(root, 'whole'));
  t.equal(cut.kind === 'llama' && cut.config.maxSeqLen, CONTEXT);
  t.not(cut.shardId, whole.shardId, 'another graph, another content address');
  const graphBytes = (m: typeof cut) => m.files.find((f) => f.name === 'model.onnx')!.bytes;
  t.ok(graphBytes(cut) < graphBytes(whole), 'the graph holds the shorter tables');
  const { graph } = await openShard(join(root, 'cut'));
  t.equal(graph.config.maxSeqLen, CONTEXT, 'a worker opening it serves that context');
});
