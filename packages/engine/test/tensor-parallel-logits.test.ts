/**
 * Tensor-parallel stages in process, beside tensor-parallel.test.ts (run.c's text in every
 * layout): stories260K's logits in TP2, TP3 and TP4 (the LM head on the leader, or split by
 * vocabulary) against the unsplit stage, groups loaded from written member shards, and a
 * split that cannot be made.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TensorSplitError } from '@swarmbee/core';
import {
  generate,
  LocalPipeline,
  type Pipeline,
  type StageEngine,
  TensorGroupStage,
} from '@swarmbee/engine';
import {
  decodeIds,
  type LlamaModelDir,
  loadTokenizer,
  openSliceShard,
  splitTensors,
  writeSliceShard,
} from '@swarmbee/model';
import t from 'tap';
import { STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
/**
 * Max |Δlogit| against the unsplit stage: the same products, summed in another order (each
 * member's o_proj and down columns, then the group's sum). Measured: about 1e-5 on logits of
 * magnitude ~10, i.e. fp32 rounding; run.c's own check allows 1e-4.
 */
const LOGIT_TOLERANCE = 5e-5;

async function greedyText(pipeline: Pipeline, dir: LlamaModelDir, prompt: string, steps: number) {
  const tokenizer = await loadTokenizer(dir);
  const [out] = await generate(pipeline, [
    { promptIds: tokenizer.encode(prompt), steps, sampling: GREEDY, stopIds: [1] },
  ]);
  // run.c ends its output with a newline.
  return `${decodeIds(tokenizer, out!.ids)}\n`;
}

t.test(
  'stories260K logits of TP2, TP3 and TP4 stay within 5e-5 of the unsplit stage',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const ids = tokenizer.encode('Once upon a time there was a little girl');
    const run = async (groups?: number[][], splitVocab = false) => {
      const pipeline = await LocalPipeline.create(dir, {
        ...(groups ? { groups } : {}),
        ...(splitVocab ? { splitVocab } : {}),
        stage: { intraOpThreads: 1 },
      });
      try {
        // A prefill of all but the last two tokens, then two decode steps, two rows at once.
        const logits: Float32Array[] = [];
        const prefill = ids.length - 2;
        const rows = (start: number, count: number) =>
          ['a', 'b'].map((seqId) => ({ seqId, start, count }));
        const tokens = (from: number, count: number) =>
          BigInt64Array.from(
            [...ids.slice(from, from + count), ...ids.slice(from, from + count)],
            BigInt,
          );
        logits.push(
          (
            await pipeline.step({
              rows: rows(0, prefill),
              tokens: tokens(0, prefill),
              logits: 'all',
            })
          ).logits!,
        );
        for (let pos = prefill; pos < ids.length; pos++)
          logits.push(
            (await pipeline.step({ rows: rows(pos, 1), tokens: tokens(pos, 1), logits: 'last' }))
              .logits!,
          );
        return logits;
      } finally {
        await pipeline.close();
      }
    };
    const whole = await run();
    for (const [groups, splitVocab] of [
      [[[1, 1]], false],
      [[[2, 1, 1]], false],
      [[[1, 1, 1, 1]], false],
      [[[2, 1, 1]], true],
      [[[1, 1, 1, 1]], true],
    ] as const) {
      const split = await run(
        groups.map((g) => [...g]),
        splitVocab,
      );
      let worst = 0;
      split.forEach((step, s) => {
        t.equal(step.length, whole[s]!.length);
        for (let i = 0; i < step.length; i++)
          worst = Math.max(worst, Math.abs(step[i]! - whole[s]![i]!));
      });
      t.ok(
        worst <= LOGIT_TOLERANCE,
        `TP${groups[0]!.length}${splitVocab ? ', head split by vocabulary' : ''}: max |Δlogit| ${worst.toExponential(2)} <= ${LOGIT_TOLERANCE}`,
      );
    }
  },
);

/** A pipeline of one stage (the group), for `generate`. */
function onePipeline(stage: StageEngine): Pipeline {
  return {
    info: {
      vocabSize: stage.info.vocabSize,
      maxSeqLen: stage.info.maxSeqLen,
      stages: [stage.info],
    },
    async step({ rows, tokens, logits }) {
      const out = await stage.forward({ rows, tokens, ...(logits ? { logits } : {}) });
      if (out.kind !== 'tokens') throw new Error('the group holds the LM head');
      return { tokens: out.tokens, ...(out.logits ? { logits: out.logits } : {}) };
    },
    release: (seqIds) => stage.release(seqIds),
    close: () => stage.close(),
  };
}

t.test('TP3 groups loaded from written member shards (speeds 1:1:2) equal run.c', async (t) => {
  const root = t.testdir();
  const dir = await stories260kDir(t, root);
  if (!dir) return;
  const range = { start: 0, end: dir.manifest.config.nLayers };
  const { vocabSize } = dir.manifest.config;
  for (const splitVocab of [false, true]) {
    const slices = splitTensors(dir.manifest.config, { weights: [1, 1, 2], splitVocab });
    t.same(
      slices.map((s) => s.kvHeads.end - s.kvHeads.start),
      [1, 1, 2],
    );
    if (splitVocab)
      t.same(
        slices.map((s) => [s.vocab!.start, s.vocab!.end]),
        [
          [0, 128],
          [128, 256],
          [256, vocabSize],
        ],
        'the vocabulary dealt 1:1:2 in units of 32 rows',
      );
    const shards = [];
    for (const slice of slices) {
      const out = join(root, `member-${splitVocab ? 'vocab-' : ''}${slice.rank}`);
      await writeSliceShard(dir, range, slice, out);
      const { shard, manifest } = await openSliceShard(out);
      t.equal(
        shard.head !== undefined,
        splitVocab || slice.rank === 0,
        `member ${slice.rank} holds a head`,
      );
      if (splitVocab && slice.rank > 0) {
        // Only its rows of the (tied) head were copied: its weights are norms and those rows.
        const weights = manifest.files.find((f) => f.name === 'weights.bin')!;
        t.ok(
          weights.bytes < vocabSize * dir.manifest.config.dim * 4,
          `member ${slice.rank} copied ${weights.bytes} bytes of weights`,
        );
      }
      shards.push(shard);
    }
    const pipeline = onePipeline(
      await TensorGroupStage.create(shards, { stage: { intraOpThreads: 1 } }),
    );
    try {
      t.equal(
        await greedyText(pipeline, dir, 'Once upon a time', 64),
        await readFile(STORIES260K.refOnceUponATime, 'utf8'),
        `written TP3${splitVocab ? ', head split by vocabulary' : ''}: "Once upon a time", 64 steps`,
      );
    } finally {
      await pipeline.close();
    }
  }
});

t.test(
  'BAD SPLIT - a group larger than the KV heads is refused before any thread starts',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    await t.rejects(LocalPipeline.create(dir, { groups: [[1, 1, 1, 1, 1]] }), {
      code: TensorSplitError.code,
      message: /4 KV heads across 5 members/,
    });
  },
);
