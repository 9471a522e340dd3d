/** Presets turn published figures into profiles; model summaries come from manifests or configs. */
import {
  type LlamaConfig,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  type ModelManifest,
  modelSummaryFromManifest,
} from '@swarmbee/core';
import t from 'tap';
import { analyticLayerDecodeMs } from '../src/analytic.js';
import {
  CostModel,
  clusterFromPresets,
  DEVICE_PRESETS,
  findPreset,
  llamaModelSummary,
  plan,
  TINYLLAMA_1B_CONFIG,
} from '../src/index.js';
import { deviceProfileFromPreset } from '../src/presets.js';

const tiny = llamaModelSummary(TINYLLAMA_1B_CONFIG, 'tinyllama');

t.test('every preset is an estimate with a source and a unique id', async (t) => {
  const ids = new Set(DEVICE_PRESETS.map((p) => p.id));
  t.equal(ids.size, DEVICE_PRESETS.length);
  for (const id of [
    'rpi4-4gb',
    'rpi4-8gb',
    'rpi5-8gb',
    'orin-nano-8gb-cpu',
    'orin-nano-8gb-gpu',
    'laptop-16gb',
  ]) {
    t.ok(ids.has(id), id);
  }
  for (const preset of DEVICE_PRESETS) {
    const profile = deviceProfileFromPreset(preset, tiny, preset.id);
    t.equal(profile.estimate, true);
    t.match(profile.source, /^preset .+: .{20,}/);
    t.equal(profile.memoryBytes, preset.memoryBytes);
  }
});

t.test('a preset decode step is memory-bound: weights over bandwidth plus overhead', async (t) => {
  const pi = findPreset('rpi4-4gb');
  const layerBytes = tiny.layers[0]!.paramBytes;
  const expected = (layerBytes / pi.memoryBandwidthBytesPerS) * 1000 + pi.opOverheadMs;
  t.ok(Math.abs(analyticLayerDecodeMs(pi, tiny, 0, 1, 0) - expected) < 0.01 * expected);
  // The cost model reads the same value back from the sampled grid (batch 1, context 0 is a sample).
  const cluster = clusterFromPresets(tiny, [{ name: 'pi', preset: pi }]);
  const cost = new CostModel(cluster, { decodeContextTokens: 0 });
  t.equal(cost.decodePrefixNs(0, 1)[1], Math.round(analyticLayerDecodeMs(pi, tiny, 0, 1, 0) * 1e6));
  // Longer contexts and bigger batches only cost more.
  t.ok(analyticLayerDecodeMs(pi, tiny, 0, 8, 1024) > analyticLayerDecodeMs(pi, tiny, 0, 1, 1024));
  t.ok(analyticLayerDecodeMs(pi, tiny, 0, 1, 2048) > analyticLayerDecodeMs(pi, tiny, 0, 1, 0));
});

t.test('latency puts a model that fits one fast device on it alone', async (t) => {
  const cluster = clusterFromPresets(tiny, [
    { name: 'pi', preset: 'rpi4-8gb' },
    { name: 'laptop', preset: 'laptop-16gb' },
  ]);
  const result = plan({ cluster, workload: { contextTokens: 1024 } }, { objective: 'latency' });
  t.same(
    result.stages.map((s) => s.device),
    ['laptop'],
  );
});

t.test('a Llama config counts like a manifest: TinyLlama is about 4.4 GB at fp32', async (t) => {
  const total =
    tiny.layers.reduce((s, l) => s + l.paramBytes, 0) + tiny.embeddingBytes + tiny.headBytes;
  t.ok(total > 4.3e9 && total < 4.5e9, `${total} bytes`);
  t.equal(tiny.layers[0]!.kvBytesPerToken, 2 * 256 * 4, 'grouped-query KV: 4 heads × 64');
});

t.test('modelSummaryFromManifest keeps what the planner needs', async (t) => {
  const config: LlamaConfig = { ...TINYLLAMA_1B_CONFIG, nLayers: 2, sharedClassifier: true };
  const manifest: ModelManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    name: 'm',
    architecture: 'llama',
    config,
    rope: 'rotate-half',
    weights: { file: 'weights.bin', bytes: 0, sha256: 'x', tensors: [] },
    layers: [
      { paramBytes: 10, kvBytesPerToken: 2 },
      { paramBytes: 11, kvBytesPerToken: 3 },
    ],
    embeddingBytes: 100,
    headBytes: 104,
    modelHash: 'h',
    source: { kind: 'synthetic', seed: 1 },
    createdBy: 'test',
  };
  const summary = modelSummaryFromManifest(manifest);
  t.same(summary, {
    name: 'm',
    modelHash: 'h',
    nLayers: 2,
    dim: config.dim,
    vocabSize: config.vocabSize,
    maxSeqLen: config.maxSeqLen,
    weightBytesPerParam: 4,
    layers: manifest.layers,
    embeddingBytes: 100,
    headBytes: 104,
    tiedEmbedding: true,
    // KV heads and their query heads, and feed-forward columns: what a tensor-parallel group splits.
    tensorShape: { nHeads: 32, nKvHeads: 4, headDim: 64, hiddenDim: 5632 },
  });
  // What a tensor-parallel member cannot be built from, the planner is never given to split.
  const quantized = {
    ...manifest,
    layers: manifest.layers.map((l) => ({ ...l, precision: 'int8' as const })),
  };
  t.equal(modelSummaryFromManifest(quantized).tensorShape, undefined, 'quantized layers');
  const postNorms = { ...manifest, config: { ...config, postNorms: true } };
  t.equal(modelSummaryFromManifest(postNorms).tensorShape, undefined, 'post-norms');
});
