/**
 * Every Hugging Face family SwarmBee builds, against transformers itself: tiny
 * checkpoints made by transformers' own model classes, and transformers' greedy ids and
 * logits for them, committed under test/fixtures/hf-families — made by
 * scripts/fixtures/hf_families.py with transformers 5.18.0 and torch 2.13 (CPU, fp32,
 * eager attention). Each imports with `importHf`, runs in 1, 2 and 3 in-process stages,
 * and must give transformers' logits within 1e-4 at every position and its greedy ids
 * over all 48 steps.
 */
import { join } from 'node:path';
import { LocalPipeline } from '@swarmbee/engine';
import { importHf } from '@swarmbee/model';
import t from 'tap';
import {
  HF_FAMILIES_DIR,
  HF_FAMILY_FIXTURES,
  maxLogitError,
  readFamilyReference,
  runGreedy,
} from './helpers/hf-families.js';

const LOGIT_TOLERANCE = 1e-4;

for (const name of HF_FAMILY_FIXTURES) {
  t.test(`${name}: equals transformers in 1, 2 and 3 stages`, async (t) => {
    const reference = await readFamilyReference(name);
    t.equal(reference.transformers, '5.18.0', 'reference made by transformers 5.18.0');
    const dir = await importHf({
      dir: join(HF_FAMILIES_DIR, name),
      out: join(t.testdir(), 'model'),
    });
    const steps = reference.ids.length - reference.promptIds.length;
    for (const stages of [1, 2, 3]) {
      const pipeline = await LocalPipeline.create(dir, { stages, threaded: false });
      try {
        const run = await runGreedy(pipeline, reference.promptIds, steps, reference.vocab);
        const { error, row } = maxLogitError(run.logits, reference.logits, reference.vocab);
        t.ok(
          error < LOGIT_TOLERANCE,
          `${stages} stage(s): max |Δlogit| ${error.toExponential(2)} (position ${row}) < ${LOGIT_TOLERANCE}`,
        );
        t.same(run.ids, reference.ids, `${stages} stage(s): greedy ids over ${steps} steps`);
      } finally {
        await pipeline.close();
      }
    }
  });
}

t.test(
  'phi3-longrope: served through original_max_position_embeddings; its switch point is a coded error',
  async (t) => {
    // transformers' Phi-3 switches every position to the long factors once a sequence passes
    // original_max_position_embeddings, recomputing the whole cache (prepare_inputs_for_generation);
    // a pipeline's cache cannot, so SwarmBee's context stops there and the next token is refused.
    const reference = await readFamilyReference('phi3-longrope');
    const dir = await importHf({
      dir: join(HF_FAMILIES_DIR, 'phi3-longrope'),
      out: join(t.testdir(), 'model'),
    });
    const { config } = dir.manifest;
    t.equal(config.maxSeqLen, 64, 'the context is original_max_position_embeddings');
    t.equal(config.ropeScaling?.type, 'longrope');
    const pipeline = await LocalPipeline.create(dir, { stages: 2, threaded: false });
    try {
      const steps = config.maxSeqLen - reference.promptIds.length;
      const run = await runGreedy(pipeline, reference.promptIds, steps, reference.vocab, 'keep');
      t.same(run.ids.slice(0, reference.ids.length), reference.ids, "transformers' ids up to 60");
      t.equal(run.ids.length, config.maxSeqLen, 'every position up to the switch');
      await t.rejects(
        pipeline.step({
          rows: [{ seqId: 'next', start: 0, count: config.maxSeqLen + 1 }],
          tokens: new BigInt64Array(config.maxSeqLen + 1).fill(3n),
        }),
        { code: 'SWARMBEE_ERR_CONTEXT_OVERFLOW', message: /beyond the model's context of 64/ },
      );
    } finally {
      await pipeline.close();
    }
  },
);
