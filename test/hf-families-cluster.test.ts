/**
 * HF families served by a real local cluster — a coordinator and worker processes on
 * loopback, shards transferred over the wire — give transformers' greedy ids through
 * the API. References: test/fixtures/hf-families (scripts/fixtures/hf_families.py,
 * transformers 5.18.0). A representative pair rather than every family: every
 * family's graph already equals transformers in 1, 2 and 3 stages in process
 * (hf-families.test.ts), and what worker processes add — shard manifests carrying the
 * config, ring caches per stage, both attention biases fed across stages — is the
 * same for all; Gemma 3 (3 workers, one layer each: local, global, local) and Mistral
 * (every layer windowed) exercise all of it.
 */
import { join } from 'node:path';
import { importHf } from '@swarmbee/model';
import t from 'tap';
import { complete, startCluster } from './helpers/cluster.js';
import { HF_FAMILIES_DIR, readFamilyReference } from './helpers/hf-families.js';

/** EOS of the fixtures' tokenizer: the API stops there, as a chat client would want. */
const FIXTURE_EOS = 2;

for (const [name, workers] of [
  ['gemma3-local-global', 3],
  ['mistral-window', 2],
] as const) {
  t.test(`${name}: ${workers} worker processes give transformers' greedy ids`, async (t) => {
    const reference = await readFamilyReference(name);
    const root = t.testdir();
    const dir = await importHf({ dir: join(HF_FAMILIES_DIR, name), out: join(root, 'model') });
    const cluster = await startCluster({ model: dir.path, workers, root });
    t.teardown(() => cluster.stop());
    const prompt = reference.promptIds;
    const generated = reference.ids.slice(prompt.length);
    const stop = generated.indexOf(FIXTURE_EOS);
    const { status, json } = await complete(cluster.apiUrl, {
      prompt,
      max_tokens: generated.length,
      temperature: 0,
    });
    t.equal(status, 200, JSON.stringify(json.error ?? ''));
    const choice = json.choices[0];
    // token_ids are the whole sequence: the prompt, then what was sampled (the stop id left out).
    t.same(
      choice.token_ids,
      [...prompt, ...(stop < 0 ? generated : generated.slice(0, stop))],
      stop < 0 ? `all ${generated.length} greedy ids` : `greedy ids up to EOS at step ${stop}`,
    );
    t.equal(choice.finish_reason, stop < 0 ? 'length' : 'stop');
    cluster.workers.forEach((worker) => {
      t.match(worker.log(), /received and verified/, 'the shard crossed the wire');
    });
  });
}
