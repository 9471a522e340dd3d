import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterBaseMismatchError,
  AdapterInvalidError,
  AdapterUnsupportedError,
  InvalidArgumentError,
  type LlamaManifest,
} from '@swarmbee/core';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  checkAdapterBase,
  initLoraAdapter,
  LORA_TARGETS,
  loraModules,
  loraTensor,
  mergeAdapter,
  peftTensorName,
  quantizeModel,
  readPeftAdapter,
  readTensor,
  requireLlamaDir,
  SYNTH_PRESETS,
  synthesizeModel,
  writePeftAdapter,
} from '@swarmbee/model';
import t from 'tap';
import { encodeSafetensors } from '../src/hf/safetensors-writer.js';
import { targetPlace } from '../src/lora/lora-spec.js';

const config = SYNTH_PRESETS.tiny.config;

t.test('targets sit on the rows of the fused tensors, q then k then v, gate then up', async (t) => {
  const places = Object.fromEntries(
    LORA_TARGETS.map((target) => [target, targetPlace(config, 2, target)]),
  );
  t.same(places.q_proj, { tensor: 'layers.2.wqkv', rowOffset: 0, outDim: 64, inDim: 64 });
  t.same(places.k_proj, { tensor: 'layers.2.wqkv', rowOffset: 64, outDim: 32, inDim: 64 });
  t.same(places.v_proj, { tensor: 'layers.2.wqkv', rowOffset: 96, outDim: 32, inDim: 64 });
  t.same(places.o_proj, { tensor: 'layers.2.wo', rowOffset: 0, outDim: 64, inDim: 64 });
  t.same(places.gate_proj, { tensor: 'layers.2.w13', rowOffset: 0, outDim: 172, inDim: 64 });
  t.same(places.up_proj, { tensor: 'layers.2.w13', rowOffset: 172, outDim: 172, inDim: 64 });
  t.same(places.down_proj, { tensor: 'layers.2.w2', rowOffset: 0, outDim: 64, inDim: 172 });
  const modules = loraModules(
    { rank: 4, alpha: 8, targets: ['v_proj', 'q_proj'], layers: [1, 3] },
    config,
  );
  t.same(
    modules.map((m) => `${m.layer}.${m.target}`),
    ['1.q_proj', '1.v_proj', '3.q_proj', '3.v_proj'],
  );
  t.equal(modules[0]!.scale, 2);
  t.equal(
    loraModules({ rank: 4, alpha: 8, targets: ['q_proj'], layers: [0], rsLora: true }, config)[0]!
      .scale,
    4,
  );
  for (const bad of [
    { rank: 0 },
    { targets: [] },
    { targets: ['q'] },
    { layers: [5] },
    { layers: [2, 1] },
  ])
    t.throws(
      () =>
        loraModules(
          { rank: 4, alpha: 8, targets: ['q_proj'], layers: [0], ...bad } as never,
          config,
        ),
      { code: InvalidArgumentError.code },
      JSON.stringify(bad),
    );
});

t.test('merging adds scale · B · A to the projection rows and nothing else', async (t) => {
  const root = t.testdir();
  const dir = await synthesizeModel({ config, seed: 5, out: join(root, 'm') });
  const adapter = initLoraAdapter(
    { rank: 2, alpha: 6, targets: ['k_proj', 'up_proj'], layers: [1] },
    dir.manifest,
    3,
  );
  const b = adapter.tensors.get(loraTensor.b(1, 'k_proj'))!;
  for (let i = 0; i < b.length; i++) b[i] = Math.sin(i);
  const merged = await mergeAdapter(dir, adapter);
  t.same([...merged.keys()].sort(), ['layers.1.w13', 'layers.1.wqkv']);
  const base = await readTensor(dir, 'layers.1.wqkv');
  const wqkv = merged.get('layers.1.wqkv')!;
  const a = adapter.tensors.get(loraTensor.a(1, 'k_proj'))!;
  let worst = 0;
  for (let row = 0; row < 128; row++)
    for (let col = 0; col < 64; col++) {
      const k = row - 64;
      const delta = k >= 0 && k < 32 ? 3 * (b[k * 2]! * a[col]! + b[k * 2 + 1]! * a[64 + col]!) : 0;
      worst = Math.max(worst, Math.abs(wqkv[row * 64 + col]! - base[row * 64 + col]! - delta));
    }
  t.ok(worst < 1e-6, `k rows moved by 3·B·A, q and v rows not at all (worst ${worst})`);
  t.same(
    merged.get('layers.1.w13'),
    await readTensor(dir, 'layers.1.w13'),
    'a zero B merges to the base exactly',
  );
});

t.test('PEFT files: written, read back, and what is refused', async (t) => {
  const root = t.testdir();
  const manifest = { config, modelHash: 'a'.repeat(64), name: 'tiny' };
  const adapter = initLoraAdapter(
    { rank: 2, alpha: 4, targets: ['q_proj', 'down_proj'], layers: [0, 4], rsLora: true },
    manifest,
    9,
  );
  const dir = join(root, 'adapter');
  await writePeftAdapter(dir, adapter);
  const config_ = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as Record<
    string,
    unknown
  >;
  t.match(config_, {
    peft_type: 'LORA',
    r: 2,
    lora_alpha: 4,
    use_rslora: true,
    target_modules: ['q_proj', 'down_proj'],
    layers_to_transform: [0, 4],
    base_model_name_or_path: 'tiny',
  });
  const back = await readPeftAdapter(dir);
  t.same(back.spec, adapter.spec);
  t.same(back.tensors, adapter.tensors);
  t.equal(back.baseModelHash, manifest.modelHash);

  const variant = async (
    name: string,
    change: (c: Record<string, unknown>) => void,
    code: string,
    message: RegExp,
  ) => {
    const other = join(root, name);
    await writePeftAdapter(other, adapter);
    const c = JSON.parse(await readFile(join(other, ADAPTER_CONFIG_FILE), 'utf8')) as Record<
      string,
      unknown
    >;
    change(c);
    await writeFile(join(other, ADAPTER_CONFIG_FILE), JSON.stringify(c));
    await t.rejects(readPeftAdapter(other), { code, message }, name);
  };
  await variant(
    'dora',
    (c) => (c.use_dora = true),
    AdapterUnsupportedError.code,
    /use_dora = true is not supported/,
  );
  await variant('bias', (c) => (c.bias = 'all'), AdapterUnsupportedError.code, /bias = "all"/);
  await variant(
    'pattern',
    (c) => (c.rank_pattern = { q_proj: 4 }),
    AdapterUnsupportedError.code,
    /rank_pattern/,
  );
  await variant(
    'save',
    (c) => (c.modules_to_save = ['lm_head']),
    AdapterUnsupportedError.code,
    /modules_to_save/,
  );
  await variant(
    'future',
    (c) => (c.use_warp_drive = true),
    AdapterUnsupportedError.code,
    /use_warp_drive = true is not supported \(a LoraConfig key SwarmBee does not know\)/,
  );
  await variant(
    'ia3',
    (c) => (c.peft_type = 'IA3'),
    AdapterUnsupportedError.code,
    /peft_type "IA3"/,
  );
  await variant('rank', (c) => (c.r = 3), AdapterInvalidError.code, /has shape \[3, 64\]|rank 3/);
  const neutral = join(root, 'neutral');
  await writePeftAdapter(neutral, adapter);
  await writeFile(
    join(neutral, ADAPTER_CONFIG_FILE),
    JSON.stringify({
      ...config_,
      lora_dropout: 0.05,
      init_lora_weights: 'gaussian',
      task_type: null,
    }),
  );
  t.same(
    (await readPeftAdapter(join(root, 'neutral'))).spec,
    adapter.spec,
    'training-only keys (dropout, init) load',
  );

  const embedding = join(root, 'embedding');
  await mkdir(embedding);
  await writeFile(join(embedding, ADAPTER_CONFIG_FILE), JSON.stringify(config_));
  await writeFile(
    join(embedding, ADAPTER_WEIGHTS_FILE),
    encodeSafetensors([
      { name: peftTensorName(0, 'q_proj', 'A'), shape: [2, 64], data: new Float32Array(128) },
      {
        name: 'base_model.model.model.embed_tokens.lora_embedding_A',
        shape: [2, 512],
        data: new Float32Array(1024),
      },
    ]),
  );
  await t.rejects(readPeftAdapter(embedding), {
    code: AdapterInvalidError.code,
    message: /lora_embedding_A is not a LoRA tensor of a Llama projection/,
  });
  await t.rejects(readPeftAdapter(join(root, 'nothing')), {
    code: AdapterInvalidError.code,
    message: /not an adapter dir/,
  });
});

t.test(
  'BAD INPUT - adapters of another base model, of a pruned one, or into quantized codes are refused',
  async (t) => {
    const root = t.testdir();
    const dir = await synthesizeModel({ config, seed: 5, out: join(root, 'm') });
    const adapter = initLoraAdapter(
      { rank: 2, alpha: 4, targets: ['o_proj'], layers: [2] },
      dir.manifest,
      1,
    );
    const other = await synthesizeModel({ config, seed: 6, out: join(root, 'other') });
    await t.rejects(mergeAdapter(other, adapter), {
      code: AdapterBaseMismatchError.code,
      message: /made for model/,
    });
    const int8 = requireLlamaDir(
      await quantizeModel(dir, { bits: 8, out: join(root, 'int8') }),
      'test',
    );
    t.doesNotThrow(
      () => checkAdapterBase(adapter, int8.manifest),
      'a model quantized from the base takes its adapters',
    );
    await t.rejects(mergeAdapter(int8, adapter), {
      code: AdapterUnsupportedError.code,
      message: /layers.2.wo of .* is int8: merging/,
    });
    const pruned = {
      ...dir.manifest,
      modelHash: 'p'.repeat(64),
      derivedFrom: {
        fromModelHash: dir.manifest.modelHash,
        fromName: 'm',
        steps: [{ kind: 'prune', dropped: [1] }],
      },
    } as LlamaManifest;
    t.throws(() => checkAdapterBase(adapter, pruned), {
      code: AdapterBaseMismatchError.code,
      message: /pruned from it/,
    });
    t.doesNotThrow(
      () => checkAdapterBase({ ...adapter, baseModelHash: undefined }, other.manifest),
      'an adapter made elsewhere (no hash) is checked by shape only',
    );
  },
);
