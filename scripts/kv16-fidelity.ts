/**
 * Fidelity of an fp16 KV cache against the fp32 one on the same model, as `swarmbee optimize
 * eval` measures a candidate (KL divergence, top-1 agreement, perplexity over the bundled
 * corpus) — except that every window is fed one token at a time, as decode runs, so each
 * position attends to a past read back from the cache (a one-pass prefill would attend to its
 * own fp32 keys and values and show no difference).
 *
 *   node --import tsx --conditions=swarmbee:source scripts/kv16-fidelity.ts MODEL_DIR [MAX_TOKENS]
 */
import {
  LocalPipeline,
  type Pipeline,
  type PipelineResult,
  type PipelineStep,
} from '@swarmbee/engine';
import { buildShard, loadTokenizer, openModelDir } from '@swarmbee/model';
import { loadCorpus, ReferenceDistribution } from '@swarmbee/optimize';

/** Runs a one-row prefill as that many one-token steps and returns every position's logits. */
function tokenByToken(inner: Pipeline): Pipeline {
  return {
    info: inner.info,
    release: (ids) => inner.release(ids),
    close: () => inner.close(),
    async step(step: PipelineStep): Promise<PipelineResult> {
      const [row] = step.rows;
      const vocab = inner.info.vocabSize;
      const logits = new Float32Array(row!.count * vocab);
      let last: PipelineResult | undefined;
      for (let t = 0; t < row!.count; t++) {
        last = await inner.step({
          rows: [{ seqId: row!.seqId, start: row!.start + t, count: 1 }],
          tokens: BigInt64Array.of(step.tokens[t]!),
          logits: 'last',
        });
        logits.set(last.logits!, t * vocab);
      }
      return { tokens: last!.tokens, logits };
    },
  };
}

const [path, maxTokens] = process.argv.slice(2);
const dir = await openModelDir(path!);
const tokenizer = await loadTokenizer(dir);
const corpus = await loadCorpus(tokenizer, dir.manifest.config.maxSeqLen, {
  maxTokens: Number(maxTokens ?? 2048),
});
const full = tokenByToken(await LocalPipeline.create(dir, { threaded: false }));
const half = tokenByToken(
  await LocalPipeline.create(dir, {
    threaded: false,
    shard: (range) => buildShard(dir, range, { kvDtype: 'float16' }),
  }),
);
try {
  const reference = await ReferenceDistribution.measure(full, corpus);
  const figures = await reference.compare(half);
  console.log(JSON.stringify({ model: dir.manifest.name, ...figures }));
} finally {
  await full.close();
  await half.close();
}
