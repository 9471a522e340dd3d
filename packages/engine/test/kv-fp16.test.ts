/**
 * An fp16 KV cache on SwarmBee's Llama shards: half the bytes, the same greedy tokens as the
 * fp32 cache (and as run.c) on stories260K, logits within a stated tolerance.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { buildShard, decodeIds, loadTokenizer, openShard, writeShard } from '@swarmbee/model';
import t from 'tap';
import { STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { OrtStage } from '../src/ort-stage.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
/** Largest logit difference an fp16 cache may make on stories260K (measured 1.25e-2; logits span about ±15). */
const FP16_KV_LOGIT_TOLERANCE = 2e-2;

t.test(
  'an fp16 KV cache gives run.c greedy tokens in 1 and 2 stages at half the bytes',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const refOnce = await readFile(STORIES260K.refOnceUponATime, 'utf8');
    for (const stages of [1, 2]) {
      const half = await LocalPipeline.create(dir, {
        stages,
        shard: (range) => buildShard(dir, range, { kvDtype: 'float16' }),
      });
      const full = await LocalPipeline.create(dir, { stages });
      try {
        const request = {
          promptIds: tokenizer.encode('Once upon a time'),
          steps: 64,
          sampling: GREEDY,
          stopIds: [1],
        };
        const [once] = await generate(half, [request]);
        t.equal(`${decodeIds(tokenizer, once!.ids)}\n`, refOnce, `${stages} stages: run.c's text`);
        for (const [i, stage] of half.stages.entries())
          t.equal(
            stage.info.limits.kvBytesPerPosition * 2,
            full.stages[i]!.info.limits.kvBytesPerPosition,
            `stage ${i}: half the KV bytes per position`,
          );
      } finally {
        await half.close();
        await full.close();
      }
    }
  },
);

t.test(
  'fp16 KV logits stay within tolerance of fp32 KV over a prompt and 48 decode steps',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const range = { start: 0, end: dir.manifest.config.nLayers };
    const full = await OrtStage.create(buildShard(dir, range), { intraOpThreads: 1 });
    const half = await OrtStage.create(buildShard(dir, range, { kvDtype: 'float16' }), {
      intraOpThreads: 1,
    });
    t.teardown(async () => {
      await full.close();
      await half.close();
    });
    const prompt = [1n, 403n, 407n, 261n, 378n];
    let tokens = BigInt64Array.from(prompt);
    let start = 0;
    let worst = 0;
    for (let step = 0; step < 48; step++) {
      const rows = [{ seqId: 's', start, count: tokens.length, sampling: GREEDY }];
      const a = await full.forward({ rows, tokens: tokens.slice(), logits: 'last' });
      const b = await half.forward({ rows, tokens: tokens.slice(), logits: 'last' });
      if (a.kind !== 'tokens' || b.kind !== 'tokens') throw new Error('the last stage samples');
      for (let i = 0; i < a.logits!.length; i++)
        worst = Math.max(worst, Math.abs(a.logits![i]! - b.logits![i]!));
      t.equal(b.tokens[0], a.tokens[0], `step ${step}: same greedy token`);
      start += tokens.length;
      tokens = BigInt64Array.of(BigInt(a.tokens[0]!));
    }
    const [fullStats, halfStats] = [await full.stats(), await half.stats()];
    t.equal(
      halfStats.kvBytes * 2,
      fullStats.kvBytes,
      `KV bytes ${halfStats.kvBytes} vs ${fullStats.kvBytes}`,
    );
    t.ok(worst > 0, 'the fp16 cache rounds something');
    t.ok(worst <= FP16_KV_LOGIT_TOLERANCE, `max |Δlogit| ${worst.toExponential(2)}`);
  },
);

t.test(
  'a written fp16-KV shard says so in shard.json, and a worker loading it keeps an fp16 cache',
  async (t) => {
    const root = t.testdir();
    const dir = await stories260kDir(t, root);
    if (!dir) return;
    const range = { start: 2, end: 5 };
    const half = await writeShard(dir, range, join(root, 'half'), undefined, {
      kvDtype: 'float16',
    });
    const full = await writeShard(dir, range, join(root, 'full'));
    t.equal(half.kind === 'llama' && half.kvDtype, 'float16');
    t.not(half.shardId, full.shardId, 'another graph, another content address');
    const { graph } = await openShard(join(root, 'half'));
    t.equal(graph.kind === 'llama' && graph.kvDtype, 'float16');
    const stage = await OrtStage.create(graph, { intraOpThreads: 1 });
    t.teardown(() => stage.close());
    const kvDim =
      dir.manifest.config.nKvHeads * (dir.manifest.config.dim / dir.manifest.config.nHeads);
    t.equal(
      stage.info.limits.kvBytesPerPosition,
      3 * 2 * kvDim * 2,
      '3 layers × K and V × kvDim × 2 B',
    );
  },
);
