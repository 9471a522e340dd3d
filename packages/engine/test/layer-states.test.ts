/**
 * LayerStateChain (what calibration for pruning reads): the hidden state it gives for layer k
 * is the hidden state a serving stage of layers [0, k + 1) hands to the next stage.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { createStageEngine, LayerStateChain } from '@swarmbee/engine';
import {
  buildShard,
  type LlamaModelDir,
  type LlamaShardGraph,
  loadTokenizer,
  VariantBuilder,
} from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

async function layerShards(dir: LlamaModelDir): Promise<LlamaShardGraph[]> {
  const builder = new VariantBuilder(dir);
  const shards: LlamaShardGraph[] = [];
  for (let l = 0; l < dir.manifest.config.nLayers; l++)
    shards.push(await builder.shard({}, { start: l, end: l + 1 }, { headless: true }));
  return shards;
}

t.test(
  'every layer state equals the hidden state a serving stage ending there sends',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const { nLayers, dim } = dir.manifest.config;
    const window = (await loadTokenizer(dir)).encode('Once upon a time, there was a little dog', {
      bos: true,
    });
    const chain = await LayerStateChain.open(await layerShards(dir), { intraOpThreads: 1 });
    t.teardown(() => chain.close());
    const states = await chain.run(window);
    t.equal(states.length, nLayers, 'one state per layer');
    for (const s of states) t.equal(s.length, window.length * dim, '[T, dim] each');
    for (let end = 1; end < nLayers; end++) {
      const stage = await createStageEngine(buildShard(dir, { start: 0, end }), {
        intraOpThreads: 1,
      });
      try {
        const out = await stage.forward({
          rows: [{ seqId: 'reference', start: 0, count: window.length }],
          tokens: BigInt64Array.from(window, BigInt),
        });
        if (out.kind !== 'hidden') throw new Error('a stage before the last sends hidden states');
        let worst = 0;
        for (let i = 0; i < out.hidden.length; i++)
          worst = Math.max(worst, Math.abs(out.hidden[i]! - states[end - 1]![i]!));
        t.ok(worst < 1e-4, `layers [0, ${end}): max |difference| ${worst}`);
      } finally {
        await stage.close();
      }
    }
    const again = await chain.run(window);
    t.same(again, states, 'a window run twice gives the same states: nothing carries over');
  },
);

t.test('BAD INPUT - layer states refuse shards that are not one layer each from 0', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const shards = await layerShards(dir);
  await t.rejects(LayerStateChain.open([shards[1]!, shards[0]!]), {
    code: InvalidArgumentError.code,
  });
  await t.rejects(LayerStateChain.open([]), { code: InvalidArgumentError.code });
});
