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
import { importHf } from '@swarmbee/model';
import t from 'tap';
import {
  HF_STORIES260K_CONFIG,
  safetensorsFile,
  stories260kHfTensors,
  writeHfStories260K,
} from '../../../test/helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { parseHfConfig } from '../src/hf/config.js';

const BASE = HF_STORIES260K_CONFIG;
const { hidden_act: _act, ...GEMMA_BASE } = { ...BASE, architectures: ['Gemma3ForCausalLM'] };

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
  t.match(parseHfConfig(mistral, 'x').config, { maxSeqLen: 512, slidingWindow: 256 });
  t.notOk('layerAttention' in parseHfConfig(mistral, 'x').config, 'Mistral windows every layer');
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
      'a RoPE type not implemented',
      { ...BASE, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      {
        code: ModelUnsupportedError.code,
        message: /rope_scaling: RoPE type "yarn" is not implemented/,
      },
    ],
    [
      'llama3 RoPE without its parameters',
      { ...BASE, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      { code: ModelUnsupportedError.code, message: /rope_scaling: low_freq_factor is null/ },
    ],
    [
      'a RoPE parameter not read',
      { ...BASE, rope_parameters: { rope_type: 'linear', factor: 2, beta_fast: 32 } },
      {
        code: ModelUnsupportedError.code,
        message: /rope_parameters: beta_fast is not a parameter/,
      },
    ],
    [
      'partial rotary factor',
      { ...BASE, architectures: ['Phi3ForCausalLM'], partial_rotary_factor: 0.5 },
      { code: ModelUnsupportedError.code, message: /partial_rotary_factor 0\.5/ },
    ],
    [
      'a key SwarmBee does not read (MoE)',
      { ...BASE, num_local_experts: 8 },
      {
        code: ModelUnsupportedError.code,
        message: /num_local_experts = 8, which SwarmBee does not read for LlamaForCausalLM/,
      },
    ],
    [
      'Gemma 3 attention soft-capping',
      { ...GEMMA_BASE, attn_logit_softcapping: 50 },
      { code: ModelUnsupportedError.code, message: /attn_logit_softcapping 50/ },
    ],
    [
      'a layer type not built',
      { ...GEMMA_BASE, layer_types: Array(5).fill('chunked_attention') },
      { code: ModelUnsupportedError.code, message: /layer_types has "chunked_attention"/ },
    ],
    [
      'longrope factors of the wrong length',
      {
        ...BASE,
        architectures: ['Phi3ForCausalLM'],
        original_max_position_embeddings: 128,
        rope_scaling: {
          type: 'longrope',
          short_factor: Array(3).fill(1),
          long_factor: Array(4).fill(2),
        },
      },
      { code: ModelUnsupportedError.code, message: /short_factor must list 4 positive numbers/ },
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
    message: /no larger than 512 \(max_position_embeddings 512\)/,
  });
  const longrope = {
    ...BASE,
    architectures: ['Phi3ForCausalLM'],
    original_max_position_embeddings: 128,
    rope_scaling: { type: 'su', short_factor: Array(4).fill(1), long_factor: Array(4).fill(2) },
  };
  t.equal(
    parseHfConfig(longrope, 'x').config.maxSeqLen,
    128,
    'longrope defaults to its original context',
  );
  t.throws(() => parseHfConfig(longrope, 'x', { contextLength: 129 }), {
    code: ModelUnsupportedError.code,
    message: /longrope long_factor: a context of 129 passes original_max_position_embeddings 128/,
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

t.test('RoPE reads the same from either config layout', async (t) => {
  const llama3 = {
    rope_type: 'llama3',
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const older = parseHfConfig(
    { ...BASE, rope_theta: 500000, rope_scaling: { ...llama3, type: 'llama3' } },
    'x',
  ).config;
  const { rope_theta: _theta, ...noTheta } = BASE;
  const current = parseHfConfig(
    { ...noTheta, rope_parameters: { ...llama3, rope_theta: 500000 } },
    'x',
  ).config;
  t.same(current, older, 'rope_parameters with rope_theta inside = rope_theta + rope_scaling');
  t.match(current, {
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, originalContext: 8192 },
  });

  const gemma = { ...GEMMA_BASE, head_dim: 16, layer_types: undefined, sliding_window: 4 };
  const gemmaOlder = parseHfConfig(
    {
      ...gemma,
      rope_theta: 1e6,
      rope_local_base_freq: 1e4,
      rope_scaling: { rope_type: 'linear', factor: 8 },
      sliding_window_pattern: 2,
    },
    'x',
  ).config;
  const gemmaCurrent = parseHfConfig(
    {
      ...gemma,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
        sliding_attention: { rope_type: 'default', rope_theta: 1e4 },
      },
      layer_types: [
        'sliding_attention',
        'full_attention',
        'sliding_attention',
        'full_attention',
        'sliding_attention',
      ],
    },
    'x',
  ).config;
  t.same(
    gemmaCurrent,
    gemmaOlder,
    'Gemma 3 nested rope_parameters = rope_theta + rope_local_base_freq',
  );
  t.match(gemmaCurrent, {
    ropeTheta: 1e6,
    ropeScaling: { type: 'linear', factor: 8 },
    localRope: { theta: 1e4 },
    slidingWindow: 4,
    layerAttention: ['sliding', 'full', 'sliding', 'full', 'sliding'],
    embeddingScale: 8,
    attentionScale: 1 / 16,
  });
  const bf16 = parseHfConfig(
    {
      ...GEMMA_BASE,
      hidden_size: 1152,
      num_attention_heads: 4,
      head_dim: 256,
      torch_dtype: 'bfloat16',
    },
    'x',
  );
  t.equal(bf16.config.embeddingScale, 34, '√1152 as transformers holds it in bf16');
  t.equal(
    parseHfConfig(
      {
        ...GEMMA_BASE,
        hidden_size: 1152,
        num_attention_heads: 4,
        head_dim: 256,
        torch_dtype: 'float32',
      },
      'x',
    ).config.embeddingScale,
    Math.fround(Math.sqrt(1152)),
  );
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
