/**
 * The fused-attention shard variant (onnxruntime's GroupQueryAttention over a cache it writes
 * in place): run.c's logits on stories260K when driven as scripts/attention-ab.ts drives it,
 * and refused by the engine, which measured it slower (docs/BENCHMARKS.md, engine section).
 */
import { readFile } from 'node:fs/promises';
import { headDim } from '@swarmbee/core';
import { createStageEngine } from '@swarmbee/engine';
import { buildShard, SHARD_IO } from '@swarmbee/model';
import ort from 'onnxruntime-node';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { stageSessionOptions } from '../src/stage-session.js';

interface RefPosition {
  pos: number;
  in: number;
  argmax: number;
  logit_argmax: number;
  logits0_7: number[];
}

const CAPACITY_POSITIONS = 96;

t.test(
  'GroupQueryAttention shard: run.c logits at every position, cache written in place',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.refLogits)) return;
    const dir = await stories260kDir(t);
    if (!dir) return;
    const { config } = dir.manifest;
    const ref = JSON.parse(await readFile(STORIES260K.refLogits, 'utf8')) as {
      positions: RefPosition[];
    };
    const shard = buildShard(dir, { start: 0, end: config.nLayers }, { attention: 'fused' });
    t.equal(shard.kind === 'llama' && shard.attention, 'fused', 'the shard says how it attends');
    const session = await ort.InferenceSession.create(
      shard.onnx,
      stageSessionOptions(shard.externalDataDir, { intraOpThreads: 1 }),
    );
    const dims = [1, config.nKvHeads, CAPACITY_POSITIONS, headDim(config)];
    const size = dims.reduce((a, b) => a * b);
    const cache = Array.from({ length: config.nLayers }, () => ({
      keys: new ort.Tensor('float32', new Float32Array(size), dims),
      values: new ort.Tensor('float32', new Float32Array(size), dims),
    }));
    try {
      let maxError = 0;
      const wrong: number[] = [];
      for (const expected of ref.positions) {
        const { pos } = expected;
        const feeds: Record<string, ort.Tensor> = {
          [SHARD_IO.inputIds]: new ort.Tensor(
            'int64',
            BigInt64Array.of(BigInt(expected.in)),
            [1, 1],
          ),
          [SHARD_IO.positionIds]: new ort.Tensor('int64', BigInt64Array.of(BigInt(pos)), [1, 1]),
          [SHARD_IO.logitIndex]: new ort.Tensor('int64', BigInt64Array.of(0n), [1, 1, 1]),
          [SHARD_IO.seqLensK]: new ort.Tensor('int32', Int32Array.of(pos), [1]),
          [SHARD_IO.totalSequenceLength]: new ort.Tensor('int32', Int32Array.of(pos + 1), []),
        };
        // Present bound to the past's buffers: onnxruntime appends the new row in place.
        const fetches: Record<string, ort.Tensor | null> = { [SHARD_IO.logits]: null };
        cache.forEach(({ keys, values }, l) => {
          feeds[SHARD_IO.pastKey(l)] = keys;
          feeds[SHARD_IO.pastValue(l)] = values;
          fetches[SHARD_IO.presentKey(l)] = keys;
          fetches[SHARD_IO.presentValue(l)] = values;
        });
        const out = await session.run(feeds, fetches);
        const logits = out[SHARD_IO.logits]!.data as Float32Array;
        let argmax = 0;
        for (let i = 1; i < config.vocabSize; i++) if (logits[i]! > logits[argmax]!) argmax = i;
        if (argmax !== expected.argmax) wrong.push(pos);
        const errors = expected.logits0_7.map((v, i) => Math.abs(v - logits[i]!));
        errors.push(Math.abs(expected.logit_argmax - logits[argmax]!));
        maxError = Math.max(maxError, ...errors);
      }
      t.same(wrong, [], `run.c's argmax at all ${ref.positions.length} positions`);
      t.ok(maxError < 1e-4, `logits within 1e-4 of run.c (max error ${maxError.toExponential(2)})`);
      const written = cache[0]!.keys.data as Float32Array;
      const positions = ref.positions.length;
      const stride = headDim(config);
      t.ok(
        written.subarray((positions - 1) * stride, positions * stride).some((v) => v !== 0) &&
          written.subarray(positions * stride, (positions + 1) * stride).every((v) => v === 0),
        `the past buffer holds exactly the ${positions} positions run`,
      );
    } finally {
      await session.release();
    }
  },
);

t.test('BAD SHARD - the engine refuses a fused-attention shard with SHARD_INVALID', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const shard = buildShard(dir, { start: 0, end: 2 }, { attention: 'fused' });
  await t.rejects(createStageEngine(shard), { code: 'SWARMBEE_ERR_SHARD_INVALID' });
});

t.test(
  'BAD OPTION - fused attention over an fp16 cache or a sliding window is refused',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const range = { start: 0, end: 2 };
    t.throws(() => buildShard(dir, range, { attention: 'fused', kvDtype: 'float16' }), {
      code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
    });
    const { config } = dir.manifest;
    const windowed = {
      ...dir,
      manifest: { ...dir.manifest, config: { ...config, slidingWindow: 8 } },
    };
    t.throws(() => buildShard(windowed, range, { attention: 'fused' }), {
      code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
      message: /sliding window/,
    });
  },
);
