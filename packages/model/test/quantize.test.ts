/** Weight quantization and layer pruning of model dirs: the stored format, never the numerics of a run. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type LlamaManifest,
  PruneInvalidError,
  QuantizationUnsupportedError,
  WEIGHT_ALIGNMENT_BYTES,
} from '@swarmbee/core';
import {
  exportLlama2c,
  type LlamaModelDir,
  openShard,
  pruneModel,
  quantizeBlockwise,
  quantizedLayout,
  quantizeModel,
  readTensor,
  SYNTH_PRESETS,
  synthesizeModel,
  VariantBuilder,
  writeShard,
} from '@swarmbee/model';
import t, { type Test } from 'tap';
import { dequantizeBlockwise } from '../src/quant/block-quant.js';
import { formatLayers } from '../src/quant/quantize-model.js';
import { readQuantizedWeight } from '../src/quant/stored-weights.js';

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: rows * cols }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32 - 0.4) * 2;
  });
}

/** Squared error of plain min/max quantization (the first range the search tries). */
function minMaxError(values: Float32Array, cols: number, bits: number): number {
  const maxCode = 2 ** bits - 1;
  let error = 0;
  for (let from = 0; from < values.length; from += 32) {
    const row = Math.floor(from / cols);
    const end = Math.min((row + 1) * cols, from + 32);
    const block = values.subarray(from, end);
    const lo = Math.min(0, ...block);
    const hi = Math.max(0, ...block);
    const scale = Math.fround((hi - lo) / maxCode);
    const zero = Math.round(-lo / scale);
    for (const v of block) {
      const code = Math.min(maxCode, Math.max(0, Math.round(v / scale) + zero));
      error += ((code - zero) * scale - v) ** 2;
    }
  }
  return error;
}

t.test(
  'block quantization: within a step of min/max, never worse than it, zeros stay zero',
  async (t) => {
    for (const bits of [8, 4] as const) {
      for (const [rows, cols] of [
        [3, 64],
        [5, 96],
        [2, 32],
      ] as const) {
        const values = randomMatrix(rows, cols, rows * cols + bits);
        values[3] = 0;
        const q = quantizeBlockwise(values, rows, cols, bits, 32);
        const layout = quantizedLayout(rows, cols, bits, 32);
        t.equal(q.codes.length, rows * layout.blocks * layout.blockBytes);
        t.equal(q.scales.length, rows * layout.blocks);
        t.equal(q.zeroPoints.length, rows * layout.zeroPointBytesPerRow);
        const back = dequantizeBlockwise(q);
        let error = 0;
        let worst = 0;
        for (let i = 0; i < values.length; i++) {
          const block = values.subarray(i - (i % 32), i - (i % 32) + 32);
          const step = (Math.max(0, ...block) - Math.min(0, ...block)) / (2 ** bits - 1);
          worst = Math.max(worst, Math.abs(back[i]! - values[i]!) / step);
          error += (back[i]! - values[i]!) ** 2;
        }
        t.ok(
          worst <= 1 + 1e-4,
          `int${bits} [${rows}, ${cols}]: worst error ${worst} min/max steps`,
        );
        t.ok(error <= minMaxError(values, cols, bits) * (1 + 1e-6), 'no worse than min/max');
        t.equal(back[3], 0, 'an exact zero stays zero');
      }
    }
    // Ragged blocks (172 = 5 × 32 + 12) read back with the padding ignored.
    const ragged = randomMatrix(2, 172, 5);
    const back = dequantizeBlockwise(quantizeBlockwise(ragged, 2, 172, 8, 32));
    t.ok(back.every((v, i) => Math.abs(v - ragged[i]!) < 0.01));
  },
);

t.test('int4 codes pack low nibble first; padding holds the zero point', async (t) => {
  const values = Float32Array.of(-1, 1);
  const q = quantizeBlockwise(values, 1, 2, 4, 32);
  const scale = Math.fround(2 / 15);
  t.equal(q.scales[0], scale, 'the block spans [-1, 1] in 15 steps');
  const zeroPoint = q.zeroPoints[0]! & 0xf;
  t.equal(zeroPoint, Math.round(1 / scale));
  const code = (v: number) => Math.min(15, Math.max(0, Math.round(v / scale) + zeroPoint));
  t.equal(q.codes[0], code(-1) | (code(1) << 4), 'first weight in the low nibble, second high');
  t.equal(q.codes[1], zeroPoint | (zeroPoint << 4), 'padding codes are the zero point');
  t.equal(q.codes.length, 16, 'one block of 32 codes in 16 bytes');
});

t.test('quantization options are checked with coded errors', async (t) => {
  const values = new Float32Array(64);
  t.throws(() => quantizeBlockwise(values, 1, 64, 3 as 4, 32), {
    code: QuantizationUnsupportedError.code,
    message: /8 or 4/,
  });
  t.throws(() => quantizeBlockwise(values, 1, 64, 4, 24), {
    code: QuantizationUnsupportedError.code,
    message: /power of two/,
  });
  t.equal(formatLayers([0, 1, 2, 5, 7, 8]), '0-2,5,7-8');
});

async function tinyModel(root: string): Promise<LlamaModelDir> {
  return synthesizeModel({ config: SYNTH_PRESETS.tiny.config, seed: 3, out: join(root, 'fp32') });
}

/** Every layer's tensors lie between the previous layer's and the next's, page-aligned. */
function checkLayout(t: Test, manifest: LlamaManifest): void {
  const tensors = manifest.weights.tensors;
  const layerOf = (name: string) => Number(/^layers\.(\d+)\./.exec(name)?.[1] ?? -1);
  let previous = -1;
  let lastEnd = 0;
  for (const tensor of tensors) {
    t.equal(tensor.offset % WEIGHT_ALIGNMENT_BYTES, 0, `${tensor.name} is page-aligned`);
    t.ok(tensor.offset >= lastEnd, `${tensor.name} follows the tensor before it`);
    lastEnd = tensor.offset + tensor.bytes;
    const layer = layerOf(tensor.name);
    if (layer >= 0) {
      t.ok(layer >= previous, `${tensor.name} is in layer order`);
      previous = layer;
    }
  }
  manifest.layers.forEach((cost, l) => {
    const bytes = tensors.filter((x) => layerOf(x.name) === l).reduce((sum, x) => sum + x.bytes, 0);
    t.equal(cost.paramBytes, bytes, `layer ${l} param bytes are its tensors' real bytes`);
  });
}

t.test('a quantized model dir stores codes, scales and zero points in layer order', async (t) => {
  const root = t.testdir();
  const fp32 = await tinyModel(root);
  const q4 = await quantizeModel(fp32, { bits: 4, out: join(root, 'q4') });
  const m = q4.manifest;
  t.equal(m.name, `${fp32.manifest.name}-int4`);
  checkLayout(t, m);
  const wqkv = m.weights.tensors.find((x) => x.name === 'layers.0.wqkv')!;
  t.equal(wqkv.dtype, 'uint8');
  t.same(wqkv.quantization, {
    bits: 4,
    blockSize: 32,
    shape: [128, 64],
    scales: 'layers.0.wqkv.scales',
    zeroPoints: 'layers.0.wqkv.zero_points',
    activations: 'int8',
  });
  const names = m.weights.tensors.map((x) => x.name);
  t.same(names.slice(names.indexOf('layers.0.wqkv'), names.indexOf('layers.0.wqkv') + 3), [
    'layers.0.wqkv',
    'layers.0.wqkv.scales',
    'layers.0.wqkv.zero_points',
  ]);
  t.same(
    m.layers.map((l) => l.precision),
    ['int4', 'int4', 'int4', 'int4', 'int4'],
  );
  t.ok(m.layers[0]!.paramBytes < 0.25 * fp32.manifest.layers[0]!.paramBytes);
  t.equal(m.embeddingBytes, fp32.manifest.embeddingBytes, 'the embedding stays fp32');
  t.same(m.derivedFrom?.steps, [
    {
      kind: 'quantize',
      bits: 4,
      blockSize: 32,
      activations: 'int8',
      method: 'asymmetric-range-search',
      layers: [0, 1, 2, 3, 4],
      head: false,
    },
  ]);
  t.equal(m.derivedFrom?.fromModelHash, fp32.manifest.modelHash);
  t.not(m.modelHash, fp32.manifest.modelHash);
  // The stored codes are the quantization of the fp32 weights, bit for bit.
  const stored = await readQuantizedWeight(q4, 'layers.2.w2');
  const expected = quantizeBlockwise(await readTensor(fp32, 'layers.2.w2'), 64, 172, 4, 32);
  t.same(Buffer.from(stored.matrix.codes), Buffer.from(expected.codes));
  t.same(stored.matrix.scales, expected.scales);
  await t.rejects(readTensor(q4, 'layers.2.w2'), { code: QuantizationUnsupportedError.code });
  const checkpoint = join(root, 'q4.bin');
  await t.rejects(exportLlama2c(q4, checkpoint), {
    code: QuantizationUnsupportedError.code,
    message: /llama2\.c checkpoints are fp32/,
  });
  t.notOk(existsSync(checkpoint), 'a refused export writes nothing');
});

t.test('quantizing some layers leaves the others as they are: mixed precision', async (t) => {
  const root = t.testdir();
  const fp32 = await tinyModel(root);
  const mixed = await quantizeModel(fp32, { bits: 4, layers: [0, 1], out: join(root, 'm4') });
  t.equal(mixed.manifest.name, `${fp32.manifest.name}-int4-layers0-1`);
  const more = await quantizeModel(mixed, { bits: 8, layers: [3, 4], out: join(root, 'm48') });
  t.same(
    more.manifest.layers.map((l) => l.precision ?? 'fp32'),
    ['int4', 'int4', 'fp32', 'int8', 'int8'],
  );
  checkLayout(t, more.manifest);
  t.same(
    Buffer.from((await readQuantizedWeight(more, 'layers.1.wo')).matrix.codes),
    Buffer.from((await readQuantizedWeight(mixed, 'layers.1.wo')).matrix.codes),
    'int4 layers are carried over, not requantized',
  );
  t.same(more.manifest.derivedFrom?.steps.length, 2);
  await t.rejects(quantizeModel(more, { bits: 8, layers: [0], out: join(root, 'x') }), {
    code: QuantizationUnsupportedError.code,
    message: /layer 0 is already int4; quantize the fp32 model/,
  });
  await t.rejects(quantizeModel(fp32, { bits: 8, layers: [5], out: join(root, 'y') }), {
    code: QuantizationUnsupportedError.code,
    message: /layer 5 does not exist/,
  });
});

t.test('a quantized head unties a tied one; the embedding stays fp32', async (t) => {
  const root = t.testdir();
  const fp32 = await tinyModel(root);
  const q = await quantizeModel(fp32, { bits: 8, head: true, out: join(root, 'q8h') });
  t.equal(q.manifest.config.sharedClassifier, false);
  const output = q.manifest.weights.tensors.find((x) => x.name === 'output')!;
  t.equal(output.quantization?.bits, 8);
  t.ok(q.manifest.headBytes < fp32.manifest.headBytes / 3);
  t.equal(q.manifest.weights.tensors.find((x) => x.name === 'tok_embeddings')?.dtype, 'float32');
});

t.test('a written shard of a quantized range carries the codes and loads', async (t) => {
  const root = t.testdir();
  const q8 = await quantizeModel(await tinyModel(root), {
    bits: 8,
    layers: [1, 2],
    out: join(root, 'q8'),
  });
  const shard = await writeShard(q8, { start: 1, end: 4 }, join(root, 'shard'));
  const weights = shard.files.find((f) => f.name === 'weights.bin')!;
  const expected = [1, 2, 3]
    .map((l) => q8.manifest.layers[l]!.paramBytes)
    .reduce((a, b) => a + b, 0);
  t.ok(weights.bytes >= expected && weights.bytes < expected + 64, 'its own layers, nothing more');
  const { graph } = await openShard(join(root, 'shard'));
  const text = Buffer.from(graph.onnx).toString('latin1');
  t.match(text, /MatMulNBits/);
  t.match(text, /com\.microsoft/);
  t.match(text, /Gemm/, 'the fp32 layer 3 keeps Gemm');
});

t.test('pruning removes layers, renumbers the rest and keeps their bytes', async (t) => {
  const root = t.testdir();
  const fp32 = await tinyModel(root);
  const pruned = await pruneModel(fp32, { drop: [1, 3], out: join(root, 'p') });
  t.equal(pruned.manifest.config.nLayers, 3);
  t.equal(pruned.manifest.name, `${fp32.manifest.name}-pruned2`);
  t.same(pruned.manifest.derivedFrom?.steps, [{ kind: 'prune', dropped: [1, 3] }]);
  t.same(await readTensor(pruned, 'layers.1.wqkv'), await readTensor(fp32, 'layers.2.wqkv'));
  t.same(await readTensor(pruned, 'layers.2.w13'), await readTensor(fp32, 'layers.4.w13'));
  t.same(
    await readFile(join(pruned.path, 'tokenizer.bin')),
    await readFile(join(fp32.path, 'tokenizer.bin')),
  );
  checkLayout(t, pruned.manifest);
  await t.rejects(pruneModel(fp32, { drop: [0, 1, 2, 3, 4], out: join(root, 'x') }), {
    code: PruneInvalidError.code,
    message: /at least one layer must stay/,
  });
  await t.rejects(pruneModel(fp32, { drop: [7], out: join(root, 'y') }), {
    code: PruneInvalidError.code,
  });
  const q4 = await quantizeModel(fp32, { bits: 4, layers: [4], out: join(root, 'q4') });
  const prunedQ = await pruneModel(q4, { drop: [0], out: join(root, 'pq') });
  t.equal(prunedQ.manifest.layers[3]!.precision, 'int4', 'a quantized layer moves with its codes');
});

t.test('variants in memory embed quantized weights and keep fp32 ones external', async (t) => {
  const root = t.testdir();
  const fp32 = await tinyModel(root);
  const builder = new VariantBuilder(fp32);
  const shard = await builder.shard({ drop: [2], precision: { 0: 'int4', 4: 'int8' } });
  t.equal(shard.config.nLayers, 4);
  t.equal(shard.externalDataDir, fp32.path);
  const text = Buffer.from(shard.onnx).toString('latin1');
  t.equal(text.match(/MatMulNBits/g)?.length, 8, 'two quantized layers, four matmuls each');
  const headless = await builder.shard({}, { start: 4, end: 5 }, { headless: true });
  t.match(Buffer.from(headless.onnx).toString('latin1'), /hidden_out/);
  t.notMatch(Buffer.from(headless.onnx).toString('latin1'), /logits/);
});
