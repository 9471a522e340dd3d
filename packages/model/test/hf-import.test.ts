import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ChatTemplateInvalidError,
  HfCheckpointInvalidError,
  InvalidArgumentError,
  ModelUnsupportedError,
  TokenizerMissingError,
} from '@swarmbee/core';
import { importHf, parseHfConfig } from '@swarmbee/model';
import t from 'tap';
import {
  HF_STORIES260K_CONFIG,
  safetensorsFile,
  stories260kHfTensors,
  writeHfStories260K,
} from '../../../test/helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';

const BASE = HF_STORIES260K_CONFIG;

t.test('config.json fields map to the Llama config, with transformers defaults', async (t) => {
  const parsed = parseHfConfig(BASE, 'x');
  t.same(parsed.config, {
    dim: 64,
    hiddenDim: 172,
    nLayers: 5,
    nHeads: 8,
    nKvHeads: 4,
    vocabSize: 512,
    maxSeqLen: 512,
    normEps: 1e-5,
    ropeTheta: 10000,
    sharedClassifier: true,
  });
  t.same(parsed.eosTokenIds, [2]);
  const { rms_norm_eps, rope_theta, num_key_value_heads, tie_word_embeddings, ...bare } = BASE;
  t.match(parseHfConfig(bare, 'x').config, {
    normEps: 1e-6,
    ropeTheta: 10000,
    nKvHeads: 8,
    sharedClassifier: false,
  });
  t.equal(parseHfConfig(BASE, 'x', { contextLength: 128 }).config.maxSeqLen, 128);
  const qwen = parseHfConfig(
    { ...BASE, architectures: ['Qwen2ForCausalLM'], sliding_window: 32, use_sliding_window: false },
    'x',
  );
  t.equal(qwen.config.qkvBias, true, 'Qwen2 has q/k/v biases');
  t.equal(qwen.config.maxSeqLen, 512, 'an unused sliding window does not limit the context');
  const mistral = { ...BASE, architectures: ['MistralForCausalLM'], sliding_window: 256 };
  t.equal(parseHfConfig(mistral, 'x', { contextLength: 256 }).config.maxSeqLen, 256);
});

t.test('UNSUPPORTED CONFIG - each refusal is coded and names what it found', async (t) => {
  const cases: [string, object, { code: string; message: RegExp }][] = [
    [
      'unknown architecture',
      { ...BASE, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' },
      {
        code: ModelUnsupportedError.code,
        message: /"GPT2LMHeadModel" \(model_type "gpt2"\).*LlamaForCausalLM/,
      },
    ],
    [
      'rope scaling',
      { ...BASE, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      {
        code: ModelUnsupportedError.code,
        message: /rope_scaling \{"rope_type":"llama3","factor":8\}/,
      },
    ],
    [
      'sliding window shorter than the context',
      { ...BASE, architectures: ['MistralForCausalLM'], sliding_window: 256 },
      {
        code: ModelUnsupportedError.code,
        message: /sliding_window 256 is shorter than the context 512.*--context 256/,
      },
    ],
    [
      'head_dim not hidden / heads',
      { ...BASE, head_dim: 16 },
      {
        code: ModelUnsupportedError.code,
        message: /head_dim 16 differs from hidden_size \/ num_attention_heads = 8/,
      },
    ],
    [
      'attention bias on a Llama',
      { ...BASE, attention_bias: true },
      { code: ModelUnsupportedError.code, message: /attention_bias is true/ },
    ],
    [
      'mlp bias',
      { ...BASE, mlp_bias: true },
      { code: ModelUnsupportedError.code, message: /mlp_bias/ },
    ],
    [
      'another activation',
      { ...BASE, hidden_act: 'gelu' },
      { code: ModelUnsupportedError.code, message: /hidden_act "gelu"/ },
    ],
    [
      'missing width',
      { ...BASE, hidden_size: undefined },
      { code: HfCheckpointInvalidError.code, message: /hidden_size is null/ },
    ],
    [
      'heads not dividing',
      { ...BASE, num_key_value_heads: 3 },
      { code: HfCheckpointInvalidError.code, message: /not a multiple of num_key_value_heads 3/ },
    ],
  ];
  for (const [what, config, expected] of cases)
    t.throws(() => parseHfConfig(config, 'x'), expected, what);
  t.throws(() => parseHfConfig(BASE, 'x', { contextLength: 1024 }), {
    code: InvalidArgumentError.code,
    message: /no larger than max_position_embeddings 512/,
  });
});

t.test('BAD CHECKPOINT - missing or misshapen pieces fail before any output exists', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const source = join(root, 'hf');
  await writeHfStories260K(source);
  const attempt = async (what: string, expected: { code: string; message: RegExp }) => {
    const out = join(root, `out-${what.replaceAll(' ', '-')}`);
    await t.rejects(importHf({ dir: source, out }), expected, what);
    t.notOk(existsSync(out), `${what}: no output left behind`);
  };
  const tensors = [...(await stories260kHfTensors()).entries()];
  await writeFile(
    join(source, 'model.safetensors'),
    safetensorsFile(
      tensors.filter(([name]) => name !== 'model.layers.3.mlp.up_proj.weight'),
      'F32',
    ),
  );
  await attempt('missing tensor', {
    code: HfCheckpointInvalidError.code,
    message: /no tensor model\.layers\.3\.mlp\.up_proj\.weight/,
  });
  const reshaped = tensors.map(([name, v]): [string, typeof v] =>
    name === 'model.norm.weight' ? [name, { shape: [8, 8], data: v.data }] : [name, v],
  );
  await writeFile(join(source, 'model.safetensors'), safetensorsFile(reshaped, 'F32'));
  await attempt('misshapen tensor', {
    code: HfCheckpointInvalidError.code,
    message: /model\.norm\.weight has shape \[8, 8\]; config\.json implies \[64\]/,
  });
  const untied = { ...BASE, tie_word_embeddings: false };
  await writeFile(join(source, 'model.safetensors'), safetensorsFile(tensors, 'F32'));
  await writeFile(join(source, 'config.json'), JSON.stringify(untied));
  await attempt('untied without lm_head', {
    code: HfCheckpointInvalidError.code,
    message: /no tensor lm_head\.weight/,
  });
  await writeFile(join(source, 'config.json'), JSON.stringify(BASE));
  await rm(join(source, 'tokenizer.json'));
  await attempt('no tokenizer.json', {
    code: TokenizerMissingError.code,
    message: /tokenizer\.json/,
  });
  await writeHfStories260K(source);
  await rm(join(source, 'model.safetensors'));
  await writeFile(join(source, 'pytorch_model.bin'), 'not read');
  await attempt('no safetensors', {
    code: HfCheckpointInvalidError.code,
    message: /neither model\.safetensors nor .*found pytorch_model\.bin/,
  });
  await rm(join(source, 'config.json'));
  await attempt('no config', {
    code: HfCheckpointInvalidError.code,
    message: /no readable config\.json/,
  });
  t.equal((await readFile(join(source, 'tokenizer.json'), 'utf8')).length > 0, true);
});

t.test(
  'BAD INPUT - a chat template that cannot be parsed: coded, naming the file, nothing written',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    await writeHfStories260K(join(root, 'ckpt'));
    await writeFile(
      join(root, 'ckpt', 'chat_template.jinja'),
      '{% for m in messages %}{{ m.content }}',
    );
    await t.rejects(importHf({ dir: join(root, 'ckpt'), out: join(root, 'm') }), {
      code: ChatTemplateInvalidError.code,
      message: /ckpt\/chat_template\.jinja: the chat template cannot be parsed/,
    });
    t.notOk(existsSync(join(root, 'm')), 'no model dir');
    // In tokenizer_config.json instead, as a list of named templates: the default one is kept.
    await rm(join(root, 'ckpt', 'chat_template.jinja'));
    const configPath = join(root, 'ckpt', 'tokenizer_config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    config.chat_template = [
      { name: 'tool_use', template: '{{ tools }}' },
      { name: 'default', template: '{{ bos_token }}{{ messages[0].content }}' },
    ];
    await writeFile(configPath, JSON.stringify(config));
    const dir = await importHf({ dir: join(root, 'ckpt'), out: join(root, 'm') });
    const ref = dir.manifest.tokenizer;
    t.same(ref?.kind === 'hf' && ref.chatTemplate?.source, 'tokenizer_config.json');
    t.equal(
      await readFile(join(dir.path, 'chat_template.jinja'), 'utf8'),
      '{{ bos_token }}{{ messages[0].content }}',
    );
  },
);
