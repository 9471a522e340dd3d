/**
 * Qwen2 (q/k/v biases, untied head) and Mistral checkpoints: the built shards'
 * logits equal a direct float64 forward pass written from the transformers
 * modelling code, so the bias path is checked against arithmetic, not against itself.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalPipeline } from '@swarmbee/engine';
import { importHf, mulberry32 } from '@swarmbee/model';
import t from 'tap';
import { hfTokenizerFromTok512, safetensorsFile } from './helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

interface TinyShape {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  eps: number;
  theta: number;
  tied: boolean;
  bias: boolean;
}

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

function tinyWeights(s: TinyShape, seed: number): Weights {
  const random = mulberry32(seed);
  const w: Weights = new Map();
  const hd = s.dim / s.heads;
  const put = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    w.set(name, {
      shape,
      data: Float32Array.from({ length: n }, () => offset + (random() * 2 - 1) * scale),
    });
  };
  const lin = (name: string, out: number, inp: number) => put(name, [out, inp], Math.sqrt(3 / inp));
  put('model.embed_tokens.weight', [s.vocab, s.dim], 1);
  for (let l = 0; l < s.layers; l++) {
    const at = (p: string) => `model.layers.${l}.${p}`;
    put(at('input_layernorm.weight'), [s.dim], 0.2, 1);
    lin(at('self_attn.q_proj.weight'), s.heads * hd, s.dim);
    lin(at('self_attn.k_proj.weight'), s.kvHeads * hd, s.dim);
    lin(at('self_attn.v_proj.weight'), s.kvHeads * hd, s.dim);
    if (s.bias) {
      put(at('self_attn.q_proj.bias'), [s.heads * hd], 0.5);
      put(at('self_attn.k_proj.bias'), [s.kvHeads * hd], 0.5);
      put(at('self_attn.v_proj.bias'), [s.kvHeads * hd], 0.5);
    }
    lin(at('self_attn.o_proj.weight'), s.dim, s.heads * hd);
    put(at('post_attention_layernorm.weight'), [s.dim], 0.2, 1);
    lin(at('mlp.gate_proj.weight'), s.hidden, s.dim);
    lin(at('mlp.up_proj.weight'), s.hidden, s.dim);
    lin(at('mlp.down_proj.weight'), s.dim, s.hidden);
  }
  put('model.norm.weight', [s.dim], 0.2, 1);
  if (!s.tied) lin('lm_head.weight', s.vocab, s.dim);
  return w;
}

/** transformers' Llama/Mistral/Qwen2 forward in float64: logits of every position. */
function referenceForward(s: TinyShape, w: Weights, tokens: number[]): number[][] {
  const W = (name: string) => w.get(name)!.data;
  const hd = s.dim / s.heads;
  const group = s.heads / s.kvHeads;
  const matvec = (m: Float32Array, x: number[], out: number) =>
    Array.from({ length: out }, (_, o) =>
      x.reduce((sum, v, i) => sum + m[o * x.length + i]! * v, 0),
    );
  const rmsNorm = (x: number[], g: Float32Array) => {
    const rms = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + s.eps);
    return x.map((v, i) => (v / rms) * g[i]!);
  };
  const rope = (x: number[], heads: number, pos: number) => {
    const out = [...x];
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < hd / 2; i++) {
        const angle = pos * s.theta ** ((-2 * i) / hd);
        const a = x[h * hd + i]!;
        const b = x[h * hd + i + hd / 2]!;
        out[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
        out[h * hd + i + hd / 2] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    return out;
  };
  const xs = tokens.map((tok) =>
    Array.from(W('model.embed_tokens.weight').subarray(tok * s.dim, (tok + 1) * s.dim)),
  );
  for (let l = 0; l < s.layers; l++) {
    const at = (p: string) => W(`model.layers.${l}.${p}`);
    const plus = (v: number[], b?: Float32Array) => (b ? v.map((x, i) => x + b[i]!) : v);
    const bias = (p: string) => (s.bias ? at(p) : undefined);
    const keys: number[][] = [];
    const values: number[][] = [];
    const queries: number[][] = [];
    xs.forEach((x, pos) => {
      const h = rmsNorm(x, at('input_layernorm.weight'));
      queries.push(
        rope(
          plus(
            matvec(at('self_attn.q_proj.weight'), h, s.heads * hd),
            bias('self_attn.q_proj.bias'),
          ),
          s.heads,
          pos,
        ),
      );
      keys.push(
        rope(
          plus(
            matvec(at('self_attn.k_proj.weight'), h, s.kvHeads * hd),
            bias('self_attn.k_proj.bias'),
          ),
          s.kvHeads,
          pos,
        ),
      );
      values.push(
        plus(
          matvec(at('self_attn.v_proj.weight'), h, s.kvHeads * hd),
          bias('self_attn.v_proj.bias'),
        ),
      );
    });
    xs.forEach((x, pos) => {
      const context: number[] = [];
      for (let head = 0; head < s.heads; head++) {
        const kv = Math.floor(head / group);
        const q = queries[pos]!.slice(head * hd, (head + 1) * hd);
        const scores = keys
          .slice(0, pos + 1)
          .map((k) => q.reduce((a, v, i) => a + v * k[kv * hd + i]!, 0) / Math.sqrt(hd));
        const top = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - top));
        const total = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hd; i++)
          context.push(e.reduce((a, p, j) => a + (p / total) * values[j]![kv * hd + i]!, 0));
      }
      const attended = matvec(at('self_attn.o_proj.weight'), context, s.dim);
      xs[pos] = x.map((v, i) => v + attended[i]!);
    });
    xs.forEach((x, pos) => {
      const f = rmsNorm(x, at('post_attention_layernorm.weight'));
      const gate = matvec(at('mlp.gate_proj.weight'), f, s.hidden);
      const up = matvec(at('mlp.up_proj.weight'), f, s.hidden);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(at('mlp.down_proj.weight'), act, s.dim);
      xs[pos] = x.map((v, i) => v + down[i]!);
    });
  }
  const head = s.tied ? W('model.embed_tokens.weight') : W('lm_head.weight');
  return xs.map((x) => matvec(head, rmsNorm(x, W('model.norm.weight')), s.vocab));
}

async function writeCheckpoint(dir: string, config: object, weights: Weights): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeFile(join(dir, 'model.safetensors'), safetensorsFile([...weights.entries()], 'F32'));
  const { tokenizer, tokenizerConfig } = await hfTokenizerFromTok512();
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
}

const CASES: { architecture: string; modelType: string; shape: TinyShape; extra: object }[] = [
  {
    architecture: 'Qwen2ForCausalLM',
    modelType: 'qwen2',
    shape: {
      dim: 32,
      hidden: 48,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      vocab: 512,
      eps: 1e-6,
      theta: 1e6,
      tied: false,
      bias: true,
    },
    extra: { use_sliding_window: false, sliding_window: 16, max_window_layers: 2 },
  },
  {
    architecture: 'MistralForCausalLM',
    modelType: 'mistral',
    shape: {
      dim: 32,
      hidden: 40,
      layers: 3,
      heads: 4,
      kvHeads: 1,
      vocab: 512,
      eps: 1e-5,
      theta: 1e4,
      tied: true,
      bias: false,
    },
    extra: { sliding_window: null },
  },
];

for (const { architecture, modelType, shape, extra } of CASES) {
  t.test(`${architecture}: shard logits equal a float64 reference forward pass`, async (t) => {
    if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
    const root = t.testdir();
    const weights = tinyWeights(shape, 11);
    const config = {
      architectures: [architecture],
      model_type: modelType,
      hidden_size: shape.dim,
      intermediate_size: shape.hidden,
      num_hidden_layers: shape.layers,
      num_attention_heads: shape.heads,
      num_key_value_heads: shape.kvHeads,
      vocab_size: shape.vocab,
      max_position_embeddings: 64,
      rms_norm_eps: shape.eps,
      rope_theta: shape.theta,
      tie_word_embeddings: shape.tied,
      hidden_act: 'silu',
      eos_token_id: 2,
      ...extra,
    };
    await writeCheckpoint(join(root, 'hf'), config, weights);
    const dir = await importHf({ dir: join(root, 'hf'), out: join(root, 'model') });
    t.equal(dir.manifest.config.qkvBias === true, shape.bias, 'bias recorded in the config');
    t.equal(dir.manifest.config.ropeTheta, shape.theta);
    const tokens = [1, 403, 407, 261, 378, 17, 300, 41];
    const expected = referenceForward(shape, weights, tokens);
    for (const stages of [1, shape.layers]) {
      const pipeline = await LocalPipeline.create(dir, { stages });
      try {
        const { logits } = await pipeline.step({
          rows: [{ seqId: 'x', start: 0, count: tokens.length }],
          tokens: BigInt64Array.from(tokens, BigInt),
          logits: 'all',
        });
        let maxError = 0;
        expected.forEach((row, p) => {
          row.forEach((v, i) => {
            maxError = Math.max(maxError, Math.abs(v - logits![p * shape.vocab + i]!));
          });
        });
        t.ok(
          maxError < 1e-4,
          `${stages} stage(s): max |Δlogit| ${maxError.toExponential(2)} < 1e-4`,
        );
      } finally {
        await pipeline.close();
      }
    }
  });
}
