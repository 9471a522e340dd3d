/**
 * BAD INPUT - `swarmbee model import hf` on broken family checkpoints, as a user runs
 * it: each is a coded error naming the file and what is wrong, and nothing is left in
 * --out. The checkpoints start from test/fixtures/hf-families (transformers 5.18.0,
 * scripts/fixtures/hf_families.py) and are broken one way each.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile } from '@swarmbee/model';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { HF_FAMILIES_DIR } from './helpers/hf-families.js';
import { safetensorsFile } from './helpers/hf-stories260k.js';

type Tensors = [string, { shape: number[]; data: Float32Array }][];

async function copyFixture(name: string, to: string): Promise<string> {
  await cp(join(HF_FAMILIES_DIR, name), to, { recursive: true });
  return to;
}

async function readTensors(file: string): Promise<Tensors> {
  const st = await SafetensorsFile.open(file);
  try {
    const out: Tensors = [];
    for (const [name, entry] of st.tensors) {
      const chunks: Float32Array[] = [];
      for await (const chunk of st.readFloat32(name)) chunks.push(chunk);
      const data = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const chunk of chunks) {
        data.set(chunk, at);
        at += chunk.length;
      }
      out.push([name, { shape: [...entry.shape], data }]);
    }
    return out;
  } finally {
    await st.close();
  }
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(config);
  await writeFile(path, JSON.stringify(config));
}

const CASES: {
  what: string;
  fixture: string;
  breakIt: (dir: string) => Promise<void>;
  code: string;
  message: RegExp;
}[] = [
  {
    what: 'a missing tensor',
    fixture: 'qwen3-qknorm',
    breakIt: async (dir) => {
      const file = join(dir, 'model.safetensors');
      const tensors = await readTensors(file);
      await writeFile(
        file,
        safetensorsFile(
          tensors.filter(([name]) => name !== 'model.layers.1.self_attn.k_norm.weight'),
          'F32',
        ),
      );
    },
    code: 'SWARMBEE_ERR_HF_CHECKPOINT_INVALID',
    message: /\(model\.safetensors\) has no tensor model\.layers\.1\.self_attn\.k_norm\.weight/,
  },
  {
    what: 'a tensor of the wrong shape',
    fixture: 'phi3-window',
    breakIt: async (dir) => {
      const file = join(dir, 'model.safetensors');
      const tensors = (await readTensors(file)).map(([name, t]): Tensors[number] =>
        name === 'model.layers.2.mlp.gate_up_proj.weight'
          ? [name, { shape: [64, 64], data: t.data.subarray(0, 64 * 64) }]
          : [name, t],
      );
      await writeFile(file, safetensorsFile(tensors, 'F32'));
    },
    code: 'SWARMBEE_ERR_HF_CHECKPOINT_INVALID',
    message:
      /model\.safetensors: tensor model\.layers\.2\.mlp\.gate_up_proj\.weight has shape \[64, 64\]; config\.json implies \[128, 32\]/,
  },
  {
    what: 'a tensor the config does not account for',
    fixture: 'llama-linear-untied',
    breakIt: async (dir) => {
      const file = join(dir, 'model.safetensors');
      const tensors = await readTensors(file);
      tensors.push([
        'model.layers.0.self_attn.o_proj.bias',
        { shape: [32], data: new Float32Array(32) },
      ]);
      await writeFile(file, safetensorsFile(tensors, 'F32'));
    },
    code: 'SWARMBEE_ERR_HF_CHECKPOINT_INVALID',
    message:
      /model\.safetensors: .*does not account for: model\.layers\.0\.self_attn\.o_proj\.bias/,
  },
  {
    what: 'an unknown architecture',
    fixture: 'llama-gqa-headdim-tied',
    breakIt: (dir) =>
      editConfig(dir, (c) => {
        c.architectures = ['FalconForCausalLM'];
        c.model_type = 'falcon';
      }),
    code: 'SWARMBEE_ERR_MODEL_UNSUPPORTED',
    message: /llama-gqa-headdim-tied.*: architecture "FalconForCausalLM" \(model_type "falcon"\)/,
  },
  {
    what: 'a RoPE type that is not implemented',
    fixture: 'llama3-rope',
    breakIt: (dir) =>
      editConfig(dir, (c) => {
        c.rope_parameters = { rope_type: 'yarn', factor: 4, rope_theta: 500000 };
      }),
    code: 'SWARMBEE_ERR_MODEL_UNSUPPORTED',
    message: /config\.json rope_parameters: RoPE type "yarn" is not implemented/,
  },
  {
    what: 'attention soft-capping',
    fixture: 'gemma3-local-global',
    breakIt: (dir) =>
      editConfig(dir, (c) => {
        c.attn_logit_softcapping = 50;
      }),
    code: 'SWARMBEE_ERR_MODEL_UNSUPPORTED',
    message: /config\.json attn_logit_softcapping 50/,
  },
  {
    what: 'mixture-of-experts fields',
    fixture: 'mistral-window',
    breakIt: (dir) =>
      editConfig(dir, (c) => {
        c.num_local_experts = 8;
        c.num_experts_per_tok = 2;
      }),
    code: 'SWARMBEE_ERR_MODEL_UNSUPPORTED',
    message:
      /config\.json has num_local_experts = 8, which SwarmBee does not read for MistralForCausalLM/,
  },
];

for (const { what, fixture, breakIt, code, message } of CASES) {
  t.test(`BAD INPUT - ${what}`, async (t) => {
    const root = t.testdir();
    const dir = await copyFixture(fixture, join(root, fixture));
    await breakIt(dir);
    const out = join(root, 'out');
    const result = await runCli(['model', 'import', 'hf', dir, '--out', out]);
    t.equal(result.code, 1);
    t.match(result.stderr, code);
    t.match(result.stderr, message);
    t.notOk(existsSync(out), 'nothing written to --out');
  });
}

t.test('BAD INPUT - --head without --bits: nothing to quantize it with', async (t) => {
  const root = t.testdir();
  const dir = await copyFixture('llama3-rope', join(root, 'llama3-rope'));
  const out = join(root, 'out');
  const result = await runCli(['model', 'import', 'hf', dir, '--head', '--out', out]);
  t.equal(result.code, 1);
  t.match(result.stderr, /SWARMBEE_ERR_INVALID_ARGUMENT/);
  t.match(result.stderr, /--head .* --bits/);
  t.notOk(existsSync(out), 'nothing written to --out');
});
