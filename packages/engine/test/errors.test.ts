import { join } from 'node:path';
import {
  ContextOverflowError,
  InvalidArgumentError,
  KvBudgetExceededError,
  StageLayoutError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import { generate, KvCache, LocalPipeline, OrtStage } from '@swarmbee/engine';
import { buildShard, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

t.test('BAD INPUT - the engine answers with coded errors and keeps serving', async (t) => {
  const dir = await synthesizeModel({
    config: { ...SYNTH_PRESETS.tiny.config, maxSeqLen: 64 },
    seed: 1,
    out: join(t.testdir(), 'm'),
  });
  const stage = await OrtStage.create(buildShard(dir, { start: 0, end: 5 }), { intraOpThreads: 1 });
  t.teardown(() => stage.close());
  await t.rejects(
    stage.forward({ rows: [{ seqId: 'a', start: 0, count: 1 }], tokens: BigInt64Array.of(512n) }),
    {
      code: TokenOutOfVocabularyError.code,
    },
  );
  await t.rejects(
    stage.forward({ rows: [{ seqId: 'a', start: 0, count: 1 }], tokens: BigInt64Array.of(-1n) }),
    { code: TokenOutOfVocabularyError.code },
  );
  await t.rejects(
    stage.forward({ rows: [{ seqId: 'b', start: 5, count: 1 }], tokens: BigInt64Array.of(1n) }),
    { code: 'SWARMBEE_ERR_SEQUENCE_UNKNOWN', message: /must start at position 0/ },
  );
  await t.rejects(
    stage.forward({ rows: [{ seqId: 'c', start: 0, count: 2 }], tokens: BigInt64Array.of(1n) }),
    { code: InvalidArgumentError.code, message: /token ids/ },
  );
  await t.rejects(
    stage.forward({ rows: [{ seqId: 'd', start: 0, count: 65 }], tokens: new BigInt64Array(65) }),
    { code: ContextOverflowError.code },
  );
  await t.rejects(
    stage.forward({
      rows: [
        { seqId: 'e', start: 0, count: 1 },
        { seqId: 'e', start: 0, count: 1 },
      ],
      tokens: new BigInt64Array(2),
    }),
    { code: InvalidArgumentError.code, message: /twice/ },
  );
  const ok = await stage.forward({
    rows: [{ seqId: 'f', start: 0, count: 1, sampling: GREEDY }],
    tokens: BigInt64Array.of(1n),
  });
  t.equal(ok.kind, 'tokens', 'still serving after bad input');
});

t.test(
  'BAD INPUT - generation refuses prompts beyond the context and ids beyond the vocabulary',
  async (t) => {
    const dir = await synthesizeModel({
      config: { ...SYNTH_PRESETS.tiny.config, maxSeqLen: 32 },
      seed: 1,
      out: join(t.testdir(), 'm'),
    });
    const pipeline = await LocalPipeline.create(dir, { stages: 2 });
    t.teardown(() => pipeline.close());
    await t.rejects(
      generate(pipeline, [{ promptIds: new Array(33).fill(5), steps: 40, sampling: GREEDY }]),
      { code: ContextOverflowError.code },
    );
    await t.rejects(generate(pipeline, [{ promptIds: [1, 9999], steps: 4, sampling: GREEDY }]), {
      code: InvalidArgumentError.code,
      message: /vocabulary/,
    });
    await t.rejects(
      generate(pipeline, [{ promptIds: [1], steps: 4, sampling: { ...GREEDY, topP: 0 } }]),
      { code: InvalidArgumentError.code, message: /top_p/ },
    );
    const [full] = await generate(pipeline, [{ promptIds: [1], steps: 0, sampling: GREEDY }]);
    t.equal(full!.ids.length, 33, 'steps 0 runs the whole context');
  },
);

t.test('BAD LAYOUT - more stages than layers', async (t) => {
  const dir = await synthesizeModel({
    config: SYNTH_PRESETS.tiny.config,
    seed: 1,
    out: join(t.testdir(), 'm'),
  });
  await t.rejects(LocalPipeline.create(dir, { stages: 6 }), {
    code: StageLayoutError.code,
    message: /between 1 and 5/,
  });
  await t.rejects(
    LocalPipeline.create(dir, {
      ranges: [
        { start: 0, end: 2 },
        { start: 3, end: 5 },
      ],
    }),
    { code: InvalidArgumentError.code },
  );
});

t.test('KV cache enforces its budget and sequence limit, and frees on release', async (t) => {
  const cache = new KvCache(2, 2, 4, 128, 2 * 32 * 8 * 4 * 2 * 2, 2);
  // The engine records what it stored after each forward pass.
  cache.reserve('a', 0, 10).length = 10;
  t.equal(cache.bytes, 32 * 8 * 4 * 2 * 2);
  cache.reserve('b', 0, 1);
  t.throws(() => cache.reserve('c', 0, 1), {
    code: KvBudgetExceededError.code,
    message: /most sequences/,
  });
  t.throws(() => cache.reserve('a', 10, 40), { code: KvBudgetExceededError.code });
  cache.release('b');
  cache.reserve('a', 10, 40);
  t.equal(cache.get('a')!.capacity, 64);
  t.throws(() => cache.reserve('a', 60, 100), { code: ContextOverflowError.code });
  cache.release('a');
  t.equal(cache.bytes, 0);
});
