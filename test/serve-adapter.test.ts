/**
 * `swarmbee coordinator --adapter`: a LoRA adapter merged into the shards as the coordinator
 * builds them, served by worker processes. Checked against PyTorch + PEFT: for each of the
 * reference's evaluation rows, the token the cluster picks greedily after the row is the
 * argmax of PEFT's logits at the row's last position (test/fixtures/peft-reference, the
 * tiny GQA model with the adapter SwarmBee trained, which PEFT loaded).
 */
import { join } from 'node:path';
import {
  AdapterBaseMismatchError,
  AdapterUnsupportedError,
  InvalidArgumentError,
} from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import { readPeftAdapter, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import { FINETUNE_DEFAULTS } from '@swarmbee/train';
import t from 'tap';
import { CLI_BIN } from './helpers/cli.js';
import { caseDir, loadReferenceCase, peftRoundtripLogits } from './helpers/peft-reference.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** Index of the largest value. */
function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

t.test("the cluster's greedy tokens with the adapter are PEFT's argmax", async (t) => {
  const root = t.testdir();
  const c = await loadReferenceCase('tiny-gqa', root);
  const adapter = await readPeftAdapter(join(caseDir('tiny-gqa'), 'trained-by-swarmbee'));
  const peft = await peftRoundtripLogits('tiny-gqa');
  const { lengths, ids } = c.reference.eval;
  const vocab = c.dir.manifest.config.vocabSize;
  const width = Math.max(...lengths);

  const cluster = await LocalCluster.start({
    model: c.dir,
    workers: 2,
    cliBin: CLI_BIN,
    cacheDir: join(root, 'cache'),
    workerOutput: 'ignore',
    coordinator: { planning: { planner: 'even' }, adapter: { name: 'trained', adapter } },
  });
  t.teardown(() => cluster.stop());
  const { coordinator } = cluster;
  t.equal(coordinator.plan?.stages.length, 2, 'two stages, each built with the adapter merged');
  t.equal(coordinator.modelName, `${c.dir.manifest.name}:trained`, 'served as <model>:<adapter>');

  const models = (await (await fetch(`${cluster.apiUrl}/v1/models`)).json()) as {
    data: { id: string }[];
  };
  t.same(
    models.data.map((m) => m.id),
    [`${c.dir.manifest.name}:trained`],
    '/v1/models lists it',
  );
  for (const [r, length] of lengths.entries()) {
    const last = peft.subarray((r * width + length - 1) * vocab, (r * width + length) * vocab);
    const result = await coordinator.service.complete({
      prompt: ids[r]!.slice(0, length),
      maxTokens: 1,
      ignoreEos: true,
      sampling: GREEDY,
    });
    t.same(
      result.tokenIds.slice(length),
      [argmax(last)],
      `row ${r}: PEFT's argmax after ${length} tokens`,
    );
  }
  // Fine-tuning on this cluster would train on the merged weights, not the base: refused.
  await t.rejects(
    coordinator.finetune(
      {
        settings: { ...FINETUNE_DEFAULTS, targets: [...FINETUNE_DEFAULTS.targets], warmupSteps: 0 },
        data: '{"text": "hi"}\n',
      },
      () => {},
    ),
    { code: AdapterUnsupportedError.code },
    'a coordinator serving a merged adapter trains nothing',
  );
});

t.test(
  'BAD INPUT - an adapter for another model, or a bad name, is refused before anything starts',
  async (t) => {
    const root = t.testdir();
    const c = await loadReferenceCase('tiny-gqa', root);
    const adapter = await readPeftAdapter(join(caseDir('tiny-gqa'), 'trained-by-swarmbee'));
    const other = await synthesizeModel({
      config: SYNTH_PRESETS.tiny.config,
      seed: 3,
      out: join(root, 'other'),
    });
    const start = (model: typeof c.dir, name: string) =>
      LocalCluster.start({
        model,
        workers: 1,
        cliBin: CLI_BIN,
        cacheDir: join(root, 'cache'),
        workerOutput: 'ignore',
        coordinator: { adapter: { name, adapter } },
      });
    await t.rejects(start(other, 'trained'), { code: AdapterBaseMismatchError.code });
    await t.rejects(start(c.dir, 'two words'), {
      code: InvalidArgumentError.code,
      message: /--adapter names its adapter "two words"/,
    });
  },
);
