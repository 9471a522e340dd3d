/**
 * SwarmBee's LoRA training against PyTorch + PEFT (test/fixtures/peft-reference, made by
 * scripts/fixtures/peft_reference.py): the same model, PEFT's initial adapter loaded from
 * PEFT's own files, the same 20 steps of data and settings. Per step, the loss and every
 * adapter gradient must equal PyTorch's within 1e-4 relative, over 1, 2 and 3 stages
 * and both schedules; micro-batches are padded differently from the reference's batch.
 * Then the round trip: the adapter SwarmBee trained, loaded by PEFT, gives PEFT the
 * logits SwarmBee's merged model gives — merged in memory, merged as shards are written, and
 * served unmerged beside another adapter and the base in one micro-batch (on fp32 weights,
 * and on int8 ones, which take no merge).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalPipeline } from '@swarmbee/engine';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adaptedModelHash,
  adapterHash,
  buildMergedShard,
  evenRanges,
  mergeAdapter,
  openShard,
  quantizeModel,
  readPeftAdapter,
  requireLlamaDir,
  type ShardGraph,
  writePeftAdapter,
  writeShard,
} from '@swarmbee/model';
import t from 'tap';
import { argmax } from './helpers/gpt2-reference.js';
import {
  caseDir,
  loadReferenceCase,
  peftRoundtripLogits,
  REFERENCE_CASES,
  relativeDifference,
  runReference,
} from './helpers/peft-reference.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const TOLERANCE = 1e-4;

for (const name of REFERENCE_CASES) {
  t.test(
    `${name}: 20 steps of loss and adapter gradients equal PyTorch + PEFT within 1e-4`,
    async (t) => {
      if (name === 'stories260k' && !haveSharedModel(t, STORIES260K.checkpoint)) return;
      const c = await loadReferenceCase(name, t.testdir());
      const nLayers = c.dir.manifest.config.nLayers;
      const runs = [
        ...[1, 2, 3]
          .filter((k) => k <= nLayers)
          .map((stages) => ({ stages, schedule: '1f1b' as const })),
        { stages: Math.min(3, nLayers), schedule: 'gpipe' as const },
      ];
      for (const run of runs) {
        const perStep: string[] = [];
        let worstLoss = 0;
        let worstGrad = 0;
        const final = await runReference(c, {
          ...run,
          onStep: ({ step, result, learningRate, gradients }) => {
            const ref = c.reference.steps[step]!;
            const lossDiff = Math.abs(result.loss - ref.loss) / Math.abs(ref.loss);
            let gradDiff = 0;
            for (const [tensor, grad] of gradients)
              gradDiff = Math.max(
                gradDiff,
                relativeDifference(
                  grad,
                  c.tensors.get(`step${String(step).padStart(2, '0')}/${tensor}`)!,
                ),
              );
            t.ok(
              Math.abs(learningRate - ref.learning_rate) <= 1e-12 * ref.learning_rate + 1e-15,
              `step ${step + 1}: learning rate`,
            );
            t.ok(
              Math.abs(result.gradNorm - ref.grad_norm) / ref.grad_norm < TOLERANCE,
              `step ${step + 1}: gradient norm`,
            );
            worstLoss = Math.max(worstLoss, lossDiff);
            worstGrad = Math.max(worstGrad, gradDiff);
            perStep.push(`${lossDiff.toExponential(1)}/${gradDiff.toExponential(1)}`);
          },
        });
        t.comment(
          `${name} ${run.stages} stage(s) ${run.schedule}, per step loss/gradient max relative difference: ${perStep.join(' ')}`,
        );
        t.ok(
          worstLoss < TOLERANCE,
          `${run.stages} stage(s), ${run.schedule}: worst loss difference ${worstLoss.toExponential(2)}`,
        );
        t.ok(
          worstGrad < TOLERANCE,
          `${run.stages} stage(s), ${run.schedule}: worst gradient difference ${worstGrad.toExponential(2)}`,
        );
        let worstFinal = 0;
        for (const [tensor, values] of final)
          worstFinal = Math.max(
            worstFinal,
            relativeDifference(values, c.tensors.get(`final/${tensor}`)!),
          );
        t.ok(
          worstFinal < TOLERANCE,
          `${run.stages} stage(s), ${run.schedule}: adapter after 20 steps within ${worstFinal.toExponential(2)} of PEFT's`,
        );
      }
    },
  );
}

for (const name of REFERENCE_CASES) {
  t.test(
    `${name}: PEFT's logits with the adapter SwarmBee trained equal SwarmBee's merged model`,
    async (t) => {
      if (name === 'stories260k' && !haveSharedModel(t, STORIES260K.checkpoint)) return;
      const root = t.testdir();
      const c = await loadReferenceCase(name, root);
      const trainedDir = join(caseDir(name), 'trained-by-swarmbee');
      const adapter = await readPeftAdapter(trainedDir);
      t.equal(adapter.baseModelHash, c.dir.manifest.modelHash, 'the adapter names its base model');
      const rewritten = join(root, 'rewritten');
      await writePeftAdapter(rewritten, adapter);
      for (const file of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
        t.same(
          await readFile(join(rewritten, file)),
          await readFile(join(trainedDir, file)),
          `${file}: read and written again, byte for byte`,
        );

      const peft = await peftRoundtripLogits(name);
      const { lengths, ids } = c.reference.eval;
      const vocab = c.dir.manifest.config.vocabSize;
      const width = Math.max(...lengths);
      /** The largest difference of the pipeline's logits from PEFT's, relative to the largest. */
      const worstOf = async (pipeline: LocalPipeline) => {
        let worst = 0;
        try {
          for (const [r, length] of lengths.entries()) {
            const seqId = `eval-${r}`;
            const { logits } = await pipeline.step({
              rows: [{ seqId, start: 0, count: length }],
              tokens: BigInt64Array.from(ids[r]!.slice(0, length), BigInt),
              logits: 'all',
            });
            await pipeline.release([seqId]);
            const expected = peft.subarray(r * width * vocab, (r * width + length) * vocab);
            worst = Math.max(worst, relativeDifference(logits!, expected));
          }
        } finally {
          await pipeline.close();
        }
        return worst;
      };

      // Merged in memory, as `generate --adapter` does.
      const merged = await mergeAdapter(c.dir, adapter);
      const id = adapterHash(adapter);
      const worst = await worstOf(
        await LocalPipeline.create(c.dir, {
          stages: 2,
          shard: (range) => buildMergedShard(c.dir, range, merged, id),
        }),
      );
      t.ok(
        worst < 1e-4,
        `logits over ${lengths.length} rows within ${worst.toExponential(2)} of PEFT's, relative to the largest`,
      );

      // Merged tensor by tensor as the shards are written, as a coordinator's `--adapter` does.
      const ranges = evenRanges(c.dir.manifest.config.nLayers, 2);
      const written: ShardGraph[] = [];
      for (const [i, range] of ranges.entries()) {
        const out = join(root, `shard-${i}`);
        const manifest = await writeShard(c.dir, range, out, undefined, { adapter });
        t.equal(
          manifest.modelHash,
          adaptedModelHash(c.dir.manifest.modelHash, id),
          `shard ${i} is filed under the adapted model's hash`,
        );
        written.push((await openShard(out)).graph);
      }
      const worstWritten = await worstOf(
        await LocalPipeline.create(c.dir, {
          ranges,
          shard: (range) => written[ranges.indexOf(range)]!,
        }),
      );
      t.ok(
        worstWritten < 1e-4,
        `merged while writing the shards: within ${worstWritten.toExponential(2)} of PEFT's`,
      );

      // Served unmerged beside PEFT's initial adapter, as `coordinator --adapter A --adapter B`
      // does: one micro-batch holds each row three times, with the base, the initial and the
      // trained adapter. The trained rows are PEFT's; the base rows the base shards'; the
      // initial rows those of the initial adapter merged.
      const served = [
        { name: 'initial', adapter: c.initial },
        { name: 'trained', adapter },
      ];
      const servedShards: ShardGraph[] = [];
      for (const [i, range] of ranges.entries()) {
        const out = join(root, `served-${i}`);
        const manifest = await writeShard(c.dir, range, out, undefined, { adapters: served });
        t.same(
          manifest.kind === 'llama' && manifest.adapters?.map((a) => a.name),
          ['initial', 'trained'],
          `shard ${i} lists the adapters it serves, in slot order`,
        );
        servedShards.push((await openShard(out)).graph);
      }
      const pipelineOf = (shards: ShardGraph[]) =>
        LocalPipeline.create(c.dir, { ranges, shard: (range) => shards[ranges.indexOf(range)]! });
      const mergedInitial = await mergeAdapter(c.dir, c.initial);
      const initialId = adapterHash(c.initial);
      const pipelines = {
        served: await pipelineOf(servedShards),
        base: await LocalPipeline.create(c.dir, { ranges }),
        initial: await LocalPipeline.create(c.dir, {
          ranges,
          shard: (range) => buildMergedShard(c.dir, range, mergedInitial, initialId),
        }),
      };
      const worstServed = { base: 0, initial: 0, trained: 0 };
      try {
        for (const [r, length] of lengths.entries()) {
          const tokens = ids[r]!.slice(0, length);
          const step = (pipeline: LocalPipeline, adapters: number[]) =>
            pipeline.step({
              rows: adapters.map((adapter) => ({
                seqId: `${r}-${adapter}`,
                start: 0,
                count: length,
                adapter,
              })),
              tokens: BigInt64Array.from(
                adapters.flatMap(() => tokens),
                BigInt,
              ),
              logits: 'all',
            });
          const mixed = (await step(pipelines.served, [0, 1, 2])).logits!;
          const row = (n: number) => mixed.subarray(n * length * vocab, (n + 1) * length * vocab);
          const alone = async (pipeline: LocalPipeline) => (await step(pipeline, [0])).logits!;
          const expected = peft.subarray(r * width * vocab, (r * width + length) * vocab);
          worstServed.base = Math.max(
            worstServed.base,
            relativeDifference(row(0), await alone(pipelines.base)),
          );
          worstServed.initial = Math.max(
            worstServed.initial,
            relativeDifference(row(1), await alone(pipelines.initial)),
          );
          worstServed.trained = Math.max(worstServed.trained, relativeDifference(row(2), expected));
          for (const p of Object.values(pipelines))
            await p.release([0, 1, 2].map((adapter) => `${r}-${adapter}`));
        }
      } finally {
        for (const p of Object.values(pipelines)) await p.close();
      }
      t.ok(
        worstServed.trained < 1e-4,
        `served unmerged, the trained adapter's rows within ${worstServed.trained.toExponential(2)} of PEFT's`,
      );
      t.ok(
        worstServed.base < 1e-5,
        `the base rows of the same batch within ${worstServed.base.toExponential(2)} of the base model's`,
      );
      // On int8 weights, which no merge takes: the trained rows' logits move by the
      // quantization error alone, the same as the base rows'.
      const int8 = requireLlamaDir(
        await quantizeModel(c.dir, { bits: 8, out: join(root, 'int8') }),
        'test',
      );
      const int8Shards: ShardGraph[] = [];
      for (const [i, range] of ranges.entries()) {
        const out = join(root, `int8-served-${i}`);
        await writeShard(int8, range, out, undefined, { adapters: served });
        int8Shards.push((await openShard(out)).graph);
      }
      const quantized = await LocalPipeline.create(int8, {
        ranges,
        shard: (range) => int8Shards[ranges.indexOf(range)]!,
      });
      let agree = 0;
      try {
        for (const [r, length] of lengths.entries()) {
          const { logits } = await quantized.step({
            rows: [{ seqId: `int8-${r}`, start: 0, count: length, adapter: 2 }],
            tokens: BigInt64Array.from(ids[r]!.slice(0, length), BigInt),
            logits: 'all',
          });
          const expected = peft.subarray(r * width * vocab, (r * width + length) * vocab);
          for (let p = 0; p < length; p++) {
            const at = (values: Float32Array) =>
              argmax(values.subarray(p * vocab, (p + 1) * vocab));
            if (at(logits!) === at(expected)) agree++;
          }
        }
      } finally {
        await quantized.close();
      }
      const positions = lengths.reduce((n, l) => n + l, 0);
      t.ok(
        agree >= 0.9 * positions,
        `int8 base, served: PEFT's argmax at ${agree} of ${positions} positions`,
      );
      t.ok(
        worstServed.initial < 1e-5,
        `the initial adapter's rows within ${worstServed.initial.toExponential(2)} of it merged`,
      );
    },
  );
}
