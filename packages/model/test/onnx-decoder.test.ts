/**
 * Importing and cutting ONNX decoder exports: what the splitter finds in
 * tiny-random-gpt2-fp32 (a genuine export with fused com.microsoft ops) and in an
 * Optimum-style graph of plain ops, and that the stage graphs of every split,
 * chained with bare onnxruntime sessions, reproduce the unsplit graph's logits.
 */
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  OnnxGraphUnsupportedError,
  type OnnxKvLayout,
  OnnxLayersNotFoundError,
  StageLayoutError,
  TokenizerInvalidError,
  WEIGHT_ALIGNMENT_BYTES,
} from '@swarmbee/core';
import {
  buildShard,
  importOnnxDecoder,
  type ModelDir,
  type OnnxDecoderShardGraph,
  openShard,
  writeShard,
} from '@swarmbee/model';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import t, { type Test } from 'tap';
import { everySplit, maxAbsDiff } from '../../../test/helpers/gpt2-reference.js';
import {
  decoderWithoutPast,
  decoderWithTangledLayers,
  withExternalData,
} from '../../../test/helpers/onnx-variants.js';
import { haveSharedModel, TINY_GPT2 } from '../../../test/helpers/shared-models.js';
import { emptyPasts, StageChain } from '../../../test/helpers/stage-chain.js';
import {
  buildSyntheticDecoder,
  SYNTHETIC_DECODER,
} from '../../../test/helpers/synthetic-decoder.js';

const { onnx } = onnxProto;
/** Chained stages must match the unsplit graph this closely (measured: bit-identical). */
const CHAIN_TOLERANCE = 1e-5;

function shardsOf(dir: ModelDir, split: { start: number; end: number }[]): OnnxDecoderShardGraph[] {
  return split.map((range) => buildShard(dir, range) as OnnxDecoderShardGraph);
}

/** Integer feeds for rows of equal length after `past` positions, all unmasked. */
function indexFeeds(dir: ModelDir, rows: number[][], past: number): Record<string, ort.Tensor> {
  if (dir.manifest.architecture !== 'onnx-decoder') throw new Error('not an imported decoder');
  const d = dir.manifest.decoder;
  const B = rows.length;
  const T = rows[0]!.length;
  const tensor = (dtype: 'int32' | 'int64', values: number[], dims: number[]) =>
    dtype === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims)
      : new ort.Tensor('int32', Int32Array.from(values), dims);
  return {
    [d.inputIds.name]: tensor(d.inputIds.dtype, rows.flat(), [B, T]),
    [d.positionIds.name]: tensor(
      d.positionIds.dtype,
      rows.flatMap((r) => r.map((_, i) => past + i)),
      [B, T],
    ),
    [d.attentionMask.name]: tensor(d.attentionMask.dtype, new Array(B * (past + T)).fill(1), [
      B,
      past + T,
    ]),
  };
}

/**
 * A prefill of two rows and two decode steps, through the unsplit source graph and
 * through the chained stages of every split; returns the largest logit difference.
 */
async function worstChainDiff(
  t: Test,
  dir: ModelDir,
  source: string,
  splits: { start: number; end: number }[][],
): Promise<number> {
  const kv = (dir.manifest as { decoder: { kv: OnnxKvLayout } }).decoder.kv;
  const steps = [
    [
      [0, 0, 0, 52],
      [0, 0, 19, 31],
    ],
    [[7], [9]],
    [[11], [3]],
  ];
  const whole = await ort.InferenceSession.create(source, { logSeverityLevel: 3 });
  const reference: Float32Array[] = [];
  const pool: Record<string, ort.Tensor> = emptyPasts(kv, 2);
  let past = 0;
  for (const rows of steps) {
    const out = await whole.run(
      Object.fromEntries(
        whole.inputNames.map((n) => [n, { ...pool, ...indexFeeds(dir, rows, past) }[n]!]),
      ),
    );
    reference.push(
      out[dir.manifest.architecture === 'onnx-decoder' ? dir.manifest.decoder.logits : 'logits']!
        .data as Float32Array,
    );
    kv.present.forEach((names, l) => {
      for (const [p, name] of names.entries()) pool[kv.past[l]![p]!] = out[name]!;
    });
    past += rows[0]!.length;
  }
  await whole.release();
  let worst = 0;
  for (const split of splits) {
    const chain = await StageChain.open(shardsOf(dir, split));
    const feeds: Record<string, ort.Tensor> = emptyPasts(kv, 2);
    past = 0;
    for (const [s, rows] of steps.entries()) {
      Object.assign(feeds, indexFeeds(dir, rows, past));
      const logits = (await chain.step(feeds)).data as Float32Array;
      const diff = maxAbsDiff(logits, reference[s]!);
      if (diff > CHAIN_TOLERANCE)
        t.fail(`split ${JSON.stringify(split)} step ${s}: logits differ by ${diff}`);
      worst = Math.max(worst, diff);
      past += rows[0]!.length;
    }
    await chain.close();
  }
  return worst;
}

t.test(
  'BAD INPUT - a tokenizer beside the export that does not fit its embedding is refused, naming --no-tokenizer',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const out = join(t.testdir(), 'm');
    await t.rejects(importOnnxDecoder({ model: TINY_GPT2.onnx, out }), {
      code: TokenizerInvalidError.code,
      message: /token id \d+ .* beyond the model's embedding of 1000 rows.*--no-tokenizer/,
    });
    t.notOk(existsSync(out), 'nothing written');
  },
);

t.test(
  'tiny-random-gpt2: the splitter finds 5 layers, the residual at each cut, and the costs',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GPT2.onnx,
      out: join(t.testdir(), 'm'),
      tokenizer: false,
    });
    const m = dir.manifest;
    t.equal(m.architecture, 'onnx-decoder');
    t.match(m.config, { dim: 32, nLayers: 5, nHeads: 4, nKvHeads: 4, headDim: 8, vocabSize: 1000 });
    t.equal(m.config.maxSeqLen, 512, 'context from genai_config.json beside the graph');
    t.match(m.decoder.kv, {
      kind: 'stacked',
      dtype: 'float32',
      past: [['past_0'], ['past_1'], ['past_2'], ['past_3'], ['past_4']],
    });
    t.same(
      m.decoder.cuts.map((c) => [c.layer, c.residual, c.boundaryOp, c.normalized?.replay]),
      [1, 2, 3, 4].map((l) => [
        l,
        `/transformer/h.${l - 1}/Add_1_output_0`,
        'SkipLayerNormalization',
        'SkipLayerNormalization',
      ]),
      'the residual (pre-norm sum, output 3) crosses each cut; the next layer norm is replayed',
    );
    t.same(m.decoder.cuts[0]!.normalized!.tensor, '/transformer/h.1/ln_1/Add_1_output_0');
    t.equal(m.decoder.hiddenDtype, 'float32');
    t.same(
      m.layers.map((l) => l.kvBytesPerToken),
      new Array(5).fill(2 * 4 * 8 * 4),
    );
    // The export shares its (identical) layer-norm weights and biases across layers: each layer counts them.
    t.ok(
      m.layers.every((l) => l.paramBytes === m.layers[0]!.paramBytes && l.paramBytes > 4 * 32 * 96),
    );
    t.equal(m.embeddingBytes >= 4 * (1000 + 512) * 32, true, 'token and position tables');
    t.equal(m.headBytes, 4 * 32 * 1000, 'the LM head, a separate [32, 1000] matrix');
    t.equal(m.decoder.tiedEmbedding, false);
    for (const tensor of m.weights.tensors) t.equal(tensor.offset % WEIGHT_ALIGNMENT_BYTES, 0);
    t.equal((await stat(dir.weightsPath)).size, m.weights.bytes);
    const graph = onnx.ModelProto.decode(await readFile(join(dir.path, m.decoder.graph.file)))
      .graph!;
    const inline = graph.initializer!.filter((i) => (i.rawData?.length ?? 0) >= 1024);
    t.same(inline, [], 'no large initializer stays inside the protobuf');
  },
);

t.test(
  'tiny-random-gpt2: every split (all 16 sets of cut points) chains to the unsplit logits',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GPT2.onnx,
      out: join(t.testdir(), 'm'),
      tokenizer: false,
    });
    const worst = await worstChainDiff(t, dir, TINY_GPT2.onnx, everySplit(5));
    t.ok(worst <= CHAIN_TOLERANCE, `largest logit difference over 16 splits × 3 steps: ${worst}`);
  },
);

t.test(
  'written shards carry just their own tensors, in external data, and run the same',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const root = t.testdir();
    const dir = await importOnnxDecoder({
      model: TINY_GPT2.onnx,
      out: join(root, 'm'),
      tokenizer: false,
    });
    const split = [
      { start: 0, end: 2 },
      { start: 2, end: 5 },
    ];
    const opened: OnnxDecoderShardGraph[] = [];
    for (const range of split) {
      const manifest = await writeShard(dir, range, join(root, `s${range.start}`));
      t.equal(manifest.kind, 'onnx-decoder');
      const { graph } = await openShard(join(root, `s${range.start}`));
      if (graph.kind !== 'onnx-decoder') throw new Error('expected an onnx-decoder shard');
      opened.push(graph);
      const proto = onnx.ModelProto.decode(graph.onnx).graph!;
      const names = proto.initializer!.map((i) => i.name);
      const large = proto.initializer!.filter(
        (i) => i.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
      );
      t.ok(
        large.length > 0 &&
          large.every((i) => i.externalData!.some((e) => e.value === 'weights.bin')),
      );
      t.ok(
        proto.initializer!.every(
          (i) =>
            i.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL ||
            (i.rawData?.length ?? 0) < 1024,
        ),
      );
      const foreign =
        range.start === 0 ? 'transformer.h.3.attn.c_attn.weight' : 'transformer.wte.weight';
      t.notOk(names.includes(foreign), `shard [${range.start}, ${range.end}) lacks ${foreign}`);
      const weights = manifest.files.find((f) => f.name === 'weights.bin')!;
      t.ok(
        weights.bytes < dir.manifest.weights.bytes,
        `${weights.bytes} of ${dir.manifest.weights.bytes} bytes`,
      );
    }
    const chain = await StageChain.open(opened);
    const built = await StageChain.open(shardsOf(dir, split));
    const kv = dir.manifest.decoder.kv;
    const rows = [
      [0, 0, 0, 52],
      [0, 0, 195, 731],
    ];
    const a = await chain.step({ ...emptyPasts(kv, 2), ...indexFeeds(dir, rows, 0) });
    const b = await built.step({ ...emptyPasts(kv, 2), ...indexFeeds(dir, rows, 0) });
    t.equal(maxAbsDiff(a.data as Float32Array, b.data as Float32Array), 0);
    await chain.close();
    await built.close();
  },
);

t.test(
  'external data: an export whose weights live in past.onnx.data keeps them external',
  async (t) => {
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const root = t.testdir();
    const source = await withExternalData(TINY_GPT2.onnx, root);
    t.ok((await stat(source)).size < 20_000, 'the re-saved graph holds no weights');
    const dir = await importOnnxDecoder({ model: source, out: join(root, 'm'), context: 512 });
    t.equal(
      dir.manifest.weights.tensors.length,
      23,
      'every large initializer moved into weights.bin',
    );
    for (const range of [
      { start: 0, end: 3 },
      { start: 3, end: 5 },
    ]) {
      const proto = onnx.ModelProto.decode(buildShard(dir, range).onnx).graph!;
      const external = proto.initializer!.filter(
        (i) => i.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
      );
      t.ok(
        external.length > 0 && external.every((i) => !i.rawData?.length),
        'shard initializers reference the weights',
      );
    }
    const worst = await worstChainDiff(t, dir, TINY_GPT2.onnx, [
      [{ start: 0, end: 5 }],
      [
        { start: 0, end: 3 },
        { start: 3, end: 5 },
      ],
    ]);
    t.ok(worst <= CHAIN_TOLERANCE, `against the original self-contained graph: ${worst}`);
  },
);

t.test(
  'an Optimum-style graph of plain ops: separate K/V, explicit residual Adds, every split',
  async (t) => {
    const root = t.testdir();
    const source = join(root, 'decoder.onnx');
    await writeFile(source, buildSyntheticDecoder());
    const dir = await importOnnxDecoder({ model: source, out: join(root, 'm'), context: 64 });
    const m = dir.manifest;
    t.match(m.config, {
      nLayers: SYNTHETIC_DECODER.layers,
      dim: SYNTHETIC_DECODER.dim,
      vocabSize: SYNTHETIC_DECODER.vocab,
    });
    t.match(m.decoder.kv, {
      kind: 'separate',
      past: [['past_key_values.0.key', 'past_key_values.0.value'], [], []],
    });
    t.same(
      m.decoder.cuts.map((c) => [c.residual, c.boundaryOp, c.normalized]),
      [
        ['residual0', 'Add', undefined],
        ['residual1', 'Add', undefined],
      ],
    );
    t.equal(m.decoder.tiedEmbedding, true, 'the head reads the token embedding');
    t.equal(m.decoder.inputIds.dtype, 'int64');
    const worst = await worstChainDiff(t, dir, source, everySplit(SYNTHETIC_DECODER.layers));
    t.ok(worst <= CHAIN_TOLERANCE, `largest logit difference over 4 splits × 3 steps: ${worst}`);
  },
);

t.test(
  'BAD GRAPH - layers that cannot be found, and files that are not decoders, get coded errors',
  async (t) => {
    const root = t.testdir();
    const cases: [string, Uint8Array, string, RegExp][] = [
      [
        'no per-layer past',
        decoderWithoutPast(),
        OnnxLayersNotFoundError.code,
        /no per-layer past inputs.*looked for past_L -> present_L.*past_key_values\.L\.key/,
      ],
      [
        'no residual between the layers',
        decoderWithTangledLayers(),
        OnnxLayersNotFoundError.code,
        /between layer 0 and layer 1.*residual add/,
      ],
      [
        'not ONNX',
        new TextEncoder().encode('just text, not a protobuf'),
        OnnxGraphUnsupportedError.code,
        /not an ONNX model/,
      ],
    ];
    for (const [name, bytes, code, message] of cases) {
      const path = join(root, `${name.replaceAll(' ', '-')}.onnx`);
      await writeFile(path, bytes);
      await t.rejects(
        importOnnxDecoder({ model: path, out: join(root, `${name}-out`), context: 16 }),
        { code, message },
        name,
      );
    }
    if (!haveSharedModel(t, TINY_GPT2.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GPT2.onnx,
      out: join(root, 'm'),
      tokenizer: false,
    });
    t.throws(() => buildShard(dir, { start: 3, end: 6 }), { code: StageLayoutError.code });
  },
);
