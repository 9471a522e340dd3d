/**
 * Adapters served unmerged: how their A and B are stacked per base tensor (slot 0 the base,
 * targets side by side in the stacked rank at the widest rank any adapter gives them), checked
 * against the adapters' own update, scale · B · A · x, computed here directly.
 */
import { join } from 'node:path';
import { AdapterBaseMismatchError, InvalidArgumentError } from '@swarmbee/core';
import {
  checkAdapterNames,
  fillLoraStack,
  initLoraAdapter,
  type LoraAdapter,
  loraModules,
  loraTensor,
  MAX_SERVED_ADAPTERS,
  planLoraStacks,
  SYNTH_PRESETS,
  servedAdapterLayerBytes,
  servedAdaptersId,
  synthesizeModel,
  writeShard,
} from '@swarmbee/model';
import t from 'tap';

const config = SYNTH_PRESETS.tiny.config;

/** An adapter with every value set (B too, unlike a fresh one), seeded. */
function filled(adapter: LoraAdapter, seed: number): LoraAdapter {
  let state = seed;
  for (const values of adapter.tensors.values())
    for (let i = 0; i < values.length; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      values[i] = state / 2 ** 31 - 0.5;
    }
  return adapter;
}

t.test('stacks: one per adapted tensor in range, targets side by side, widest rank', async (t) => {
  const root = t.testdir();
  const dir = await synthesizeModel({ config, seed: 1, out: join(root, 'model') });
  const { manifest } = dir;
  const x = filled(
    initLoraAdapter({ rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], layers: [0] }, manifest, 1),
    7,
  );
  const y = filled(
    initLoraAdapter(
      { rank: 4, alpha: 4, targets: ['v_proj', 'down_proj'], layers: [0, 1], rsLora: true },
      manifest,
      2,
    ),
    9,
  );
  const adapters = [
    { name: 'x', adapter: x },
    { name: 'y', adapter: y },
  ];
  const stacks = planLoraStacks(adapters, manifest, { start: 0, end: 2 });
  t.same(
    stacks.map((s) => [s.tensor, s.inDim, s.outDim, s.rank]),
    [
      ['layers.0.wqkv', 64, 128, 6],
      ['layers.0.w2', 172, 64, 4],
      ['layers.1.wqkv', 64, 128, 4],
      ['layers.1.w2', 172, 64, 4],
    ],
    'the whole fused tensor is the output; q (rank 2) and v (rank 4) share the stacked rank',
  );
  t.same(
    stacks[0]!.slots.map((s) => [s.target, s.rowOffset, s.outDim, s.rankOffset, s.rank]),
    [
      ['q_proj', 0, 64, 0, 2],
      ['v_proj', 96, 32, 2, 4],
    ],
  );
  t.same(
    planLoraStacks(adapters, manifest, { start: 1, end: 2 }).map((s) => s.tensor),
    ['layers.1.wqkv', 'layers.1.w2'],
    'a shard of layer 1 stacks layer 1 only',
  );

  // Each slot's update of a row is its adapter's own: Σ over modules of scale · B · (A · x).
  for (const stack of stacks) {
    const { a, b } = fillLoraStack(stack, adapters);
    const { inDim, outDim, rank } = stack;
    t.equal(a.length, 3 * inDim * rank);
    t.equal(b.length, 3 * rank * outDim);
    const input = Float64Array.from({ length: inDim }, (_, i) => Math.sin(i + 1));
    for (const [slot, adapter] of [undefined, x, y].entries()) {
      const stacked = new Float64Array(outDim);
      for (let r = 0; r < rank; r++) {
        let down = 0;
        for (let i = 0; i < inDim; i++) down += input[i]! * a[(slot * inDim + i) * rank + r]!;
        for (let o = 0; o < outDim; o++) stacked[o]! += down * b[(slot * rank + r) * outDim + o]!;
      }
      const direct = new Float64Array(outDim);
      for (const m of adapter ? loraModules(adapter.spec, config) : []) {
        if (m.tensor !== stack.tensor) continue;
        const loraA = adapter!.tensors.get(loraTensor.a(m.layer, m.target))!;
        const loraB = adapter!.tensors.get(loraTensor.b(m.layer, m.target))!;
        for (let r = 0; r < m.rank; r++) {
          let down = 0;
          for (let i = 0; i < inDim; i++) down += loraA[r * inDim + i]! * input[i]!;
          for (let o = 0; o < m.outDim; o++)
            direct[m.rowOffset + o]! += m.scale * loraB[o * m.rank + r]! * down;
        }
      }
      let worst = 0;
      for (let o = 0; o < outDim; o++) worst = Math.max(worst, Math.abs(stacked[o]! - direct[o]!));
      t.ok(
        worst < 1e-5,
        `${stack.tensor} slot ${slot}: the adapter's own update (${worst.toExponential(1)})`,
      );
    }
  }
  // What a plan counts is what the shards add: the stacks after the base weights.
  const range = { start: 0, end: 2 };
  const base = await writeShard(dir, range, join(root, 'base'));
  const served = await writeShard(dir, range, join(root, 'served'), undefined, { adapters });
  const weights = (m: typeof base) => m.files.find((f) => f.name === 'weights.bin')!.bytes;
  const perLayer = servedAdapterLayerBytes(adapters, manifest);
  t.equal(perLayer.length, config.nLayers);
  const added = weights(served) - weights(base);
  const counted = perLayer.slice(0, 2).reduce((n, b) => n + b, 0);
  t.ok(
    added >= counted && added - counted <= 3 * 2 * stacks.length,
    `servedAdapterLayerBytes counts the ${added} bytes the stacks add (${counted}, alignment aside)`,
  );
  t.same(perLayer.slice(2), new Array(config.nLayers - 2).fill(0), 'layers no adapter touches: 0');

  t.not(
    servedAdaptersId(adapters),
    servedAdaptersId([...adapters].reverse()),
    'the slot order is part of what the shards serve',
  );
});

t.test('BAD INPUT - names, counts and adapters of another model are refused', async (t) => {
  const root = t.testdir();
  const dir = await synthesizeModel({ config, seed: 1, out: join(root, 'model') });
  const other = await synthesizeModel({ config, seed: 2, out: join(root, 'other') });
  const spec = { rank: 2, alpha: 4, targets: ['q_proj' as const], layers: [0] };
  t.throws(() => checkAdapterNames(['a', 'a']), {
    code: InvalidArgumentError.code,
    message: /two adapters are named "a"/,
  });
  t.throws(() => checkAdapterNames(['two words']), { code: InvalidArgumentError.code });
  t.throws(
    () => checkAdapterNames(Array.from({ length: MAX_SERVED_ADAPTERS + 1 }, (_, i) => `a${i}`)),
    { code: InvalidArgumentError.code, message: /at most 64/ },
  );
  t.throws(
    () =>
      planLoraStacks(
        [{ name: 'foreign', adapter: initLoraAdapter(spec, other.manifest, 1) }],
        dir.manifest,
        { start: 0, end: 1 },
      ),
    { code: AdapterBaseMismatchError.code },
  );
});
