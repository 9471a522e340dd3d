/**
 * Sliding-window layers keep a ring of W cache slots. The engine's guarantees hold
 * for them as for full layers: a sequence gets transformers' greedy ids alone, in a
 * micro-batch with ragged neighbours, and with its prompt prefilled in chunks
 * shorter or longer than the window; the ring's bytes do not grow with the context;
 * a replay from position 0 repeats itself; a rewind past what the ring holds is refused.
 * Fixtures: test/fixtures/hf-families (transformers 5.18.0, scripts/fixtures/hf_families.py).
 */
import { join } from 'node:path';
import { KvHistoryLostError } from '@swarmbee/core';
import { createStageEngine, generate, LocalPipeline } from '@swarmbee/engine';
import { buildShard, importHf } from '@swarmbee/model';
import t from 'tap';
import { HF_FAMILIES_DIR, readFamilyReference } from '../../../test/helpers/hf-families.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

for (const name of ['mistral-window', 'gemma3-local-global'] as const) {
  t.test(`${name}: alone, batched and chunked give transformers' ids`, async (t) => {
    const reference = await readFamilyReference(name);
    const dir = await importHf({ dir: join(HF_FAMILIES_DIR, name), out: join(t.testdir(), 'm') });
    const window = dir.manifest.config.slidingWindow!;
    t.ok(window < reference.promptIds.length, `window ${window} is shorter than the prompt`);
    const steps = reference.ids.length - 1;
    const requests = [
      { promptIds: reference.promptIds, steps, sampling: GREEDY, stopIds: [] },
      { promptIds: reference.promptIds.slice(0, 3), steps: 40, sampling: GREEDY, stopIds: [] },
      { promptIds: reference.promptIds.slice(0, 9), steps: 50, sampling: GREEDY, stopIds: [] },
    ];
    const pipeline = await LocalPipeline.create(dir, { stages: 2, threaded: false });
    try {
      const alone: number[][] = [];
      for (const request of requests) alone.push((await generate(pipeline, [request]))[0]!.ids);
      t.same(alone[0], reference.ids, 'alone: transformers greedy ids');
      for (const chunk of [2, window + 3]) {
        const together = await generate(pipeline, requests, { prefillChunkTokens: chunk });
        together.forEach((result, i) => {
          t.same(result.ids, alone[i], `batched with ${chunk}-token prefill chunks: sequence ${i}`);
        });
      }
    } finally {
      await pipeline.close();
    }
  });
}

t.test(
  'a ring stays W slots whatever the context; rewinds it cannot honour are refused',
  async (t) => {
    const dir = await importHf({
      dir: join(HF_FAMILIES_DIR, 'mistral-window'),
      out: join(t.testdir(), 'm'),
    });
    const { config } = dir.manifest;
    const window = config.slidingWindow!;
    t.same(
      dir.manifest.layers.map((l) => l.kvWindowTokens),
      Array(config.nLayers).fill(window),
      'the manifest bounds every layer KV by the window',
    );
    const stage = await createStageEngine(buildShard(dir, { start: 0, end: config.nLayers }));
    try {
      const step = (start: number, count: number) =>
        stage.forward({
          rows: [{ seqId: 's', start, count, sampling: GREEDY }],
          tokens: BigInt64Array.from({ length: count }, (_, i) => BigInt(3 + ((start + i) % 50))),
          logits: 'last',
        });
      const first = await step(0, 12);
      const ringBytes = (await stage.stats()).kvBytes;
      const kvDim = config.nKvHeads * (config.headDim ?? config.dim / config.nHeads);
      t.equal(ringBytes, config.nLayers * 2 * window * kvDim * 4, 'W slots per layer');
      for (let p = 12; p < 40; p++) await step(p, 1);
      t.equal((await stage.stats()).kvBytes, ringBytes, 'no growth after 40 positions');
      await step(39, 1);
      t.pass('rewinding by the one position just written is exact (its slot is rewritten)');
      await t.rejects(step(30, 1), {
        code: KvHistoryLostError.code,
        message: /replay it from position 0/,
      });
      const again = await step(0, 12);
      if (first.kind !== 'tokens' || again.kind !== 'tokens') throw new Error('expected logits');
      t.same([...again.logits!], [...first.logits!], 'a replay from position 0 repeats the logits');
    } finally {
      await stage.close();
    }
  },
);
