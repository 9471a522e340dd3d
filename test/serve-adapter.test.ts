/**
 * LoRA adapters served by worker processes, checked against PyTorch + PEFT
 * (test/fixtures/peft-reference: the tiny GQA model with the adapter SwarmBee trained, which
 * PEFT loaded): for each evaluation row, the cluster's greedy token after the row is the argmax
 * of PEFT's logits at its last position.
 * - `coordinator --merge-adapter`: one adapter merged into the shards as they are built.
 * - `coordinator --adapter A --adapter B`: adapters served beside the base, chosen per request
 *   by the API's `model`; concurrent requests for the base and both adapters share decode
 *   micro-batches, and each gets the ids of its own model run in this process (merged weights).
 */
import { join } from 'node:path';
import type { CoordinatorOptions } from '@swarmbee/coordinator';
import {
  AdapterBaseMismatchError,
  AdapterUnsupportedError,
  InvalidArgumentError,
  ModelNotFoundError,
} from '@swarmbee/core';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { LocalCluster } from '@swarmbee/local-cluster';
import {
  adapterHash,
  buildMergedShard,
  type LlamaModelDir,
  type LoraAdapter,
  mergeAdapter,
  readPeftAdapter,
  SYNTH_PRESETS,
  synthesizeModel,
} from '@swarmbee/model';
import { FINETUNE_DEFAULTS } from '@swarmbee/train';
import t, { type Test } from 'tap';
import { CLI_BIN, runCli } from './helpers/cli.js';
import { argmax } from './helpers/gpt2-reference.js';
import { caseDir, loadReferenceCase, peftRoundtripLogits } from './helpers/peft-reference.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/**
 * The tiny GQA reference in `root`, the adapter SwarmBee trained, and PEFT's logits with it
 * at row r's last position (`lastLogits`).
 */
async function reference(root: string) {
  const c = await loadReferenceCase('tiny-gqa', root);
  const trained = await readPeftAdapter(join(caseDir('tiny-gqa'), 'trained-by-swarmbee'));
  const peft = await peftRoundtripLogits('tiny-gqa');
  const { lengths, ids } = c.reference.eval;
  const vocab = c.dir.manifest.config.vocabSize;
  const width = Math.max(...lengths);
  const lastLogits = (r: number) =>
    peft.subarray((r * width + lengths[r]! - 1) * vocab, (r * width + lengths[r]!) * vocab);
  return { c, trained, lengths, ids, lastLogits };
}

/** Two workers over the reference model, an even plan, and the adapters `coordinator` names. */
async function startCluster(
  t: Test,
  c: { dir: LlamaModelDir },
  root: string,
  coordinator: Pick<CoordinatorOptions, 'adapter' | 'adapters'>,
) {
  const cluster = await LocalCluster.start({
    model: c.dir,
    workers: 2,
    cliBin: CLI_BIN,
    cacheDir: join(root, 'cache'),
    workerOutput: 'ignore',
    coordinator: { planning: { planner: 'even' }, ...coordinator },
  });
  t.teardown(() => cluster.stop());
  return cluster;
}

t.test("merged: the cluster's greedy tokens with the adapter are PEFT's argmax", async (t) => {
  const root = t.testdir();
  const { c, trained: adapter, lengths, ids, lastLogits } = await reference(root);
  const cluster = await startCluster(t, c, root, { adapter: { name: 'trained', adapter } });
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
    const last = lastLogits(r);
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

/** Greedy ids of `prompt` in this process, with `adapter` merged (or the base without one). */
async function inProcessIds(
  dir: LlamaModelDir,
  prompt: number[],
  steps: number,
  adapter: LoraAdapter | undefined,
): Promise<number[]> {
  const merged = adapter && (await mergeAdapter(dir, adapter));
  const pipeline = await LocalPipeline.create(dir, {
    stages: 2,
    ...(merged
      ? { shard: (range) => buildMergedShard(dir, range, merged, adapterHash(adapter)) }
      : {}),
  });
  try {
    const [result] = await generate(pipeline, [{ promptIds: prompt, steps, sampling: GREEDY }]);
    return result!.ids;
  } finally {
    await pipeline.close();
  }
}

t.test('served beside the base: each request runs with the adapter its model names', async (t) => {
  const root = t.testdir();
  const { c, trained, lengths, ids, lastLogits } = await reference(root);
  const base = c.dir.manifest.name;
  const adapters = { initial: c.initial, trained };
  const cluster = await startCluster(t, c, root, {
    adapters: Object.entries(adapters).map(([name, adapter]) => ({ name, adapter })),
  });
  const { coordinator } = cluster;
  t.equal(coordinator.plan?.stages.length, 2, 'two stages, each serving both adapters');
  const models = (await (await fetch(`${cluster.apiUrl}/v1/models`)).json()) as {
    data: { id: string }[];
  };
  t.same(
    models.data.map((m) => m.id),
    [base, `${base}:initial`, `${base}:trained`],
    '/v1/models lists the base and each adapter',
  );

  /** Row 0's ids with the trained adapter, in this process. */
  let trainedIds: number[] = [];
  /** Tokens each request samples: the first prefills, the rest decode side by side. */
  const sampled = 8;
  for (const [r, length] of lengths.entries()) {
    const prompt = ids[r]!.slice(0, length);
    const steps = length + sampled - 1;
    // Three requests at once: their decode steps share micro-batches, each row its adapter.
    const asked = [undefined, 'initial', 'trained'] as const;
    const answers = await Promise.all(
      asked.map(async (name) => {
        const response = await fetch(`${cluster.apiUrl}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            ...(name ? { model: `${base}:${name}` } : {}),
            prompt,
            max_tokens: sampled,
            ignore_eos: true,
            temperature: 0,
          }),
        });
        return (await response.json()) as { model: string; choices: { token_ids: number[] }[] };
      }),
    );
    for (const [i, name] of asked.entries()) {
      const answer = answers[i]!;
      t.equal(answer.model, name ? `${base}:${name}` : base, `row ${r}: answered as its model`);
      const expected = await inProcessIds(c.dir, prompt, steps, name && adapters[name]);
      if (r === 0 && name === 'trained') trainedIds = expected;
      t.same(
        [...prompt, ...answer.choices[0]!.token_ids.slice(length)],
        expected,
        `row ${r}, ${name ?? 'base'}: the ids of the model run in this process`,
      );
    }
    t.equal(
      answers[2]!.choices[0]!.token_ids[length],
      argmax(lastLogits(r)),
      `row ${r}: the trained adapter's first token is PEFT's argmax`,
    );
  }

  // `generate --url --adapter NAME` asks for the served adapter by its name.
  const generateArgs = (adapter: string) => [
    ...['generate', '--url', cluster.apiUrl, '--adapter', adapter, '--json'],
    ...['--prompt-ids', ids[0]!.slice(0, lengths[0]).join(',')],
    ...['--steps', String(lengths[0]! + sampled - 1), '--temperature', '0'],
  ];
  const cli = await runCli(generateArgs('trained'));
  t.equal(cli.code, 0, cli.stderr);
  t.same(
    (JSON.parse(cli.stdout) as { token_ids: number[] }).token_ids,
    trainedIds,
    'generate --url --adapter trained: the same ids',
  );
  const unknown = await runCli(generateArgs('nope'));
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, ModelNotFoundError.code, 'an adapter it does not serve, by name');

  const missing = await fetch(`${cluster.apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: `${base}:nope`, prompt: [1, 2], max_tokens: 1 }),
  });
  const refusal = (await missing.json()) as { error: { code: string; message: string } };
  // Training runs on the base weights the served shards hold, before their stacks.
  const job = await coordinator.finetune(
    {
      settings: {
        ...FINETUNE_DEFAULTS,
        targets: [...FINETUNE_DEFAULTS.targets],
        steps: 2,
        warmupSteps: 0,
        seqLen: 32,
      },
      data: Array.from({ length: 8 }, (_, i) => JSON.stringify({ text: `story ${i}` })).join('\n'),
    },
    () => {},
  );
  t.equal(job.result.steps, 2, 'a fine-tuning job trains over the shards that serve adapters');
  t.ok(
    job.result.history.every((step) => Number.isFinite(step.loss)),
    'with finite losses',
  );
  t.equal(missing.status, 404, 'an adapter it does not serve is 404');
  t.match(refusal.error, {
    code: ModelNotFoundError.code,
    message: `is not served here; this coordinator serves ${base}, ${base}:initial, ${base}:trained`,
  });
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
    /** A one-worker cluster with these adapters: every case here is refused before it starts. */
    const start = (
      model: typeof c.dir,
      adapters: Pick<CoordinatorOptions, 'adapter' | 'adapters' | 'planning'>,
    ) =>
      LocalCluster.start({
        model,
        workers: 1,
        cliBin: CLI_BIN,
        cacheDir: join(root, 'cache'),
        workerOutput: 'ignore',
        coordinator: adapters,
      });
    await t.rejects(start(other, { adapter: { name: 'trained', adapter } }), {
      code: AdapterBaseMismatchError.code,
    });
    await t.rejects(
      start(other, { adapters: [{ name: 'trained', adapter }] }),
      { code: AdapterBaseMismatchError.code },
      'an adapter served beside the base is checked against it too',
    );
    await t.rejects(
      start(c.dir, {
        adapters: [
          { name: 'same', adapter },
          { name: 'same', adapter: c.initial },
        ],
      }),
      { code: InvalidArgumentError.code, message: /two adapters are named "same"/ },
    );
    await t.rejects(
      start(c.dir, { adapter: { name: 'a', adapter }, adapters: [{ name: 'b', adapter }] }),
      { code: InvalidArgumentError.code, message: /--merge-adapter and --adapter do not mix/ },
    );
    await t.rejects(
      start(c.dir, {
        adapters: [{ name: 'a', adapter }],
        planning: { planner: 'dp', parallelism: 'hybrid' },
      }),
      { code: InvalidArgumentError.code, message: /--parallelism hybrid plans tensor-parallel/ },
      'tensor-parallel members serve no adapter: refused before anything starts',
    );
    await t.rejects(start(c.dir, { adapter: { name: 'two words', adapter } }), {
      code: InvalidArgumentError.code,
      message: /--adapter names its adapter "two words"/,
    });
  },
);
