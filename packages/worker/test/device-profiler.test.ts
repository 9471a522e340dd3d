/**
 * The device profile predicts a whole stage from small shards: a layer is told apart from the
 * engine's fixed cost per pass, which a stage pays once however many layers it holds.
 */
import { join } from 'node:path';
import { buildShard, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';
import { type ProfileGrid, perLayer, profileDevice } from '../src/device-profiler.js';

const GRID: ProfileGrid = {
  batchSizes: [1, 4],
  decodeContexts: [16],
  // Chunks of 128 and 256 tokens, each timed 4 times (prefill takes half the repeats): two
  // layers' prefill of them (span − middle) stands above a loaded machine's noise. With one
  // chunk of 16 timed twice on this dim-64 model the difference came out 0 at load 10-15, and
  // with chunks of 64 and 128 once in a CI run (both cores busy with the suite).
  prefillChunks: [128, 256],
  prefillContexts: [0],
  repeats: 9,
};
const ENGINE = { intraOpThreads: 1 };

t.test('a pass of k layers is k layers plus one fixed cost: both are told apart', async (t) => {
  // Two batch sizes, two contexts: layer 2 ms (3 at the longer context), fixed 0.5 ms per pass.
  const grid = (k: number, fixedMs: number) => ({
    batchSizes: [1, 4],
    contextTokens: [16, 256],
    ms: [
      [2 * k + fixedMs, 3 * k + fixedMs],
      [4 * k + fixedMs, 6 * k + fixedMs],
    ],
  });
  const prefill = (k: number) => ({
    chunkTokens: [16],
    contextTokens: [0],
    ms: [[10 * k + 1]],
  });
  const { layer, fixed } = perLayer(
    { decode: grid(1, 0.5), prefill: prefill(1) },
    { decode: grid(4, 0.5), prefill: prefill(4) },
    4,
  );
  t.same(layer.decode.ms, grid(1, 0).ms, 'the layer alone');
  t.same(layer.prefill?.ms, [[10]], 'a prefill chunk through the layer alone');
  t.same(
    fixed.ms,
    [
      [0.5, 0.5],
      [0.5, 0.5],
    ],
    'the fixed cost of a pass',
  );
});

t.test(
  'a device profiled with a span of layers: a layer, and the fixed cost in the stage overhead',
  async (t) => {
    const config = SYNTH_PRESETS.tiny.config;
    const dir = await synthesizeModel({ config, seed: 5, out: join(t.testdir(), 'm') });
    const n = config.nLayers;
    const profile = await profileDevice(
      {
        first: buildShard(dir, { start: 0, end: 1 }),
        middle: buildShard(dir, { start: 1, end: 2 }),
        span: buildShard(dir, { start: 1, end: 4 }),
        last: buildShard(dir, { start: n - 1, end: n }),
      },
      ENGINE,
      { grid: GRID },
    );
    t.equal(profile.layers.length, 1, 'one layer timing stands for every layer');
    const layer = profile.layers[0]!;
    t.same(layer.decode.batchSizes, GRID.batchSizes);
    t.ok(layer.decode.ms.flat().every((ms) => ms >= 0 && Number.isFinite(ms)));
    t.ok(
      layer.prefill.ms.flat().some((ms) => ms > 0),
      'a prefill chunk takes time',
    );
    const overhead = profile.stageOverhead?.decode.ms ?? [];
    t.equal(overhead.length, GRID.batchSizes.length, 'a fixed cost per batch size');
    t.ok(
      overhead.flat().every((ms) => ms > 0),
      'a pass costs something beyond its layers',
    );
  },
);
