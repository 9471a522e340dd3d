/**
 * The scale benchmark's serving part on the tiny synthetic model (the suite runs it on the
 * Llama 3.2 1B and 3B shapes): real worker processes on loopback report their load, peak RSS
 * and speed, and a decode step is taken apart into layers, LM head and sampling.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { headShare, servePart } from '@swarmbee/bench';
import { SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';
import { CLI_BIN } from './helpers/cli.js';

t.test('servePart measures each worker and each stream count over 1 and 2 workers', async (t) => {
  const root = t.testdir();
  const dir = await synthesizeModel({
    config: { ...SYNTH_PRESETS.tiny.config, maxSeqLen: 128 },
    seed: 5,
    out: join(root, 'model'),
  });
  const { load, speed } = await servePart({
    models: [{ label: 'tiny', dir }],
    workers: [1, 2],
    streams: [1, 2],
    decodeTokens: 4,
    promptTokens: 24,
    // Below the model's 128: the shards' RoPE tables are cut to it, filed under -ctx64.
    contextTokens: 64,
    bandwidthBytesPerS: 1e9,
    cliBin: CLI_BIN,
    cacheDir: join(root, 'clusters'),
    progress: () => {},
  });
  t.same(
    await readdir(join(root, 'clusters', 'tiny')),
    [],
    "each cluster's caches removed after it",
  );
  t.same(
    load.map((r) => [r.workers, r.worker, r.layers]),
    [
      [1, 'worker-0', '[0, 5)'],
      [2, 'worker-0', '[0, 3)'],
      [2, 'worker-1', '[3, 5)'],
    ],
  );
  for (const r of load) {
    t.ok(
      r.shardBytes > 200_000 && r.shardBytes < 2_000_000,
      `${r.worker}: shard ${r.shardBytes} B`,
    );
    t.ok(r.kvBytes > 0 && r.kvBytes <= r.kvBudgetBytes, `${r.worker}: KV ${r.kvBytes} B`);
    t.ok(r.peakRssBytes > r.shardBytes, `${r.worker}: peak RSS ${r.peakRssBytes} B`);
    t.equal(r.overheadBytes, r.peakRssBytes - r.shardBytes - r.kvBytes);
    t.ok(r.loadMs > 0);
  }
  t.same(
    speed.map((s) => [s.workers, s.streams]),
    [
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ],
  );
  for (const s of speed) {
    t.ok(s.tokensPerS > 0 && s.ttftMs > 0, `${s.workers}w ${s.streams}s: ${s.tokensPerS} tok/s`);
    t.equal(s.roofline, (s.tokensPerS * dir.manifest.weights.bytes) / 1e9);
  }
});

t.test('headShare takes a decode step apart into layers, head and sampling', async (t) => {
  const dir = await synthesizeModel({
    config: { ...SYNTH_PRESETS.tiny.config, maxSeqLen: 128 },
    seed: 5,
    out: join(t.testdir(), 'model'),
  });
  const r = await headShare('tiny', dir, 1);
  t.equal(r.model, 'tiny');
  t.ok(r.layerMs > 0 && r.stepMs > 3 * r.layerMs, `step ${r.stepMs} ms, layer ${r.layerMs} ms`);
  t.ok(Number.isFinite(r.headMs), `head ${r.headMs} ms`);
  t.ok(r.greedyMs >= 0 && r.sampledMs > 0, `sampling ${r.greedyMs} / ${r.sampledMs} ms`);
});
