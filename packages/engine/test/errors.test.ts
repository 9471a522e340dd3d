import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  ContextOverflowError,
  ExecutionProviderUnavailableError,
  InvalidArgumentError,
  KvBudgetExceededError,
  StageLayoutError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import {
  availableExecutionProviders,
  executionProviders,
  generate,
  LocalPipeline,
} from '@swarmbee/engine';
import { buildShard, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';
import { KvCache } from '../src/kv-cache.js';
import { OrtStage } from '../src/ort-stage.js';

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
      code: TokenOutOfVocabularyError.code,
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

t.test(
  'KV cache: arenas are reused while a batch keeps its rows, budgets and limits hold',
  async (t) => {
    // 2 layers, 2 kv heads of 4: one row at the initial 32 positions is 2*32*8*4*2 = 4 KiB.
    const rowBytes = 2 * 32 * 8 * 4 * 2;
    const cache = new KvCache(2, 2, 4, 128, 3 * rowBytes, 3);
    const a = cache.prepare([{ seqId: 'a', start: 0, count: 10 }]).arena;
    cache.commit([{ seqId: 'a', start: 0, count: 10 }]);
    t.equal(cache.bytes, rowBytes);
    t.equal(
      cache.prepare([{ seqId: 'a', start: 10, count: 1 }]).arena,
      a,
      'the same rows reuse their arena',
    );
    cache.commit([{ seqId: 'a', start: 10, count: 1 }]);
    a.keys[0]![3] = 42; // position 0 of head 0, dim 3
    const ab = cache.prepare([
      { seqId: 'a', start: 11, count: 1 },
      { seqId: 'b', start: 0, count: 1 },
    ]).arena;
    t.not(ab, a, 'a new composition gets a new arena');
    t.equal(ab.keys[0]![3], 42, 'and keeps what was cached');
    t.equal(cache.bytes, 2 * rowBytes, 'the old arena is gone');
    cache.commit([
      { seqId: 'a', start: 11, count: 1 },
      { seqId: 'b', start: 0, count: 1 },
    ]);
    t.equal(cache.length('a'), 12);
    t.throws(
      () =>
        cache.prepare([
          { seqId: 'c', start: 0, count: 1 },
          { seqId: 'd', start: 0, count: 1 },
        ]),
      { code: KvBudgetExceededError.code, message: /most sequences/ },
    );
    t.throws(
      () =>
        cache.prepare([
          { seqId: 'a', start: 12, count: 60 },
          { seqId: 'b', start: 1, count: 1 },
        ]),
      { code: KvBudgetExceededError.code },
      'growing past the budget is refused',
    );
    t.equal(cache.length('a'), 12, 'a refused batch changes nothing');
    t.throws(() => cache.prepare([{ seqId: 'a', start: 100, count: 40 }]), {
      code: ContextOverflowError.code,
    });
    t.throws(() => cache.prepare([{ seqId: 'a', start: 20, count: 1 }]), {
      code: InvalidArgumentError.code,
      message: /cannot start at 20/,
    });
    t.throws(() => cache.prepare([{ seqId: 'x', start: 3, count: 1 }]), {
      code: 'SWARMBEE_ERR_SEQUENCE_UNKNOWN',
    });
    cache.release('a');
    cache.release('b');
    t.equal(cache.bytes, 0, 'releasing every row frees the arena');
    t.equal(cache.size, 0);
  },
);

t.test(
  'execution providers: cpu always, an uninstalled GPU provider refused by name',
  async (t) => {
    const available = availableExecutionProviders();
    t.ok(available.includes('cpu'));
    t.same(executionProviders('cpu'), ['cpu']);
    t.throws(() => executionProviders('no-such-provider'), {
      code: ExecutionProviderUnavailableError.code,
      message: /"no-such-provider" is not available.*available: cpu/,
    });
    // package.json's allowScripts keeps onnxruntime-node's CUDA download from running, so
    // CUDA must not be offered here even though the binding lists it.
    const cudaLibrary = join(
      dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node'))),
      'bin/napi-v6',
      process.platform,
      process.arch,
      'libonnxruntime_providers_cuda.so',
    );
    t.equal(available.includes('cuda'), existsSync(cudaLibrary), 'cuda counts only when installed');
  },
);
