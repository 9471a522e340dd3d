/**
 * BAD GGUF: malformed or unsupported files are refused with a coded error naming the file
 * and the key or tensor, and leave nothing where the model dir was to go.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  GgufInvalidError,
  GgufTensorTypeUnsupportedError,
  ModelUnsupportedError,
} from '@swarmbee/core';
import { importGguf } from '@swarmbee/model';
import t from 'tap';
import { SHARED_GGUF } from './helpers/gguf-fixtures.js';
import {
  type GgufLayout,
  ggufBytes,
  readGgufLayout,
  setKv,
  writeGguf,
} from './helpers/gguf-writer.js';
import { haveSharedModel } from './helpers/shared-models.js';

interface Case {
  what: string;
  source: string;
  /** Edits the layout to write … */
  edit?: (layout: GgufLayout) => void;
  /** … or makes the file's bytes from it. */
  bytes?: (layout: GgufLayout) => Buffer;
  code: string;
  /** Text the message must hold besides the file name (the key or tensor). */
  names: RegExp;
}

const drop = (layout: GgufLayout, name: string) => {
  layout.tensors = layout.tensors.filter((x) => x.name !== name);
};

const CASES: Case[] = [
  {
    what: 'a file truncated inside its tensor data',
    source: SHARED_GGUF.stories260kF32,
    bytes: (l) => ggufBytes(l).subarray(0, 600_000),
    code: GgufInvalidError.code,
    names: /tensor blk\.\d\.\S+ .*runs past the end of the file/,
  },
  {
    what: 'a file truncated inside its header',
    source: SHARED_GGUF.stories260kF32,
    bytes: (l) => ggufBytes(l).subarray(0, 5_000),
    code: GgufInvalidError.code,
    names: /header .* runs past the end of the file|does not parse as GGUF v3/,
  },
  {
    what: 'a tensor whose offset runs past the end',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => {
      l.tensors.find((x) => x.name === 'blk.3.ffn_up.weight')!.offset = 2 ** 30;
    },
    code: GgufInvalidError.code,
    names: /tensor blk\.3\.ffn_up\.weight .*runs past the end/,
  },
  {
    what: 'a tensor of a ggml type SwarmBee does not decode (IQ2_XXS)',
    source: SHARED_GGUF.synthqF32,
    edit: (l) => {
      const t = l.tensors.find((x) => x.name === 'blk.1.attn_q.weight')!;
      t.typeId = 16;
      t.data = new Uint8Array((t.ne[0]! * t.ne[1]! * 66) / 256);
    },
    code: GgufTensorTypeUnsupportedError.code,
    names: /tensor blk\.1\.attn_q\.weight is IQ2_XXS/,
  },
  {
    what: 'a tensor type id ggml does not define',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => {
      l.tensors.find((x) => x.name === 'output_norm.weight')!.typeId = 99;
    },
    code: GgufInvalidError.code,
    names: /tensor output_norm\.weight has type id 99/,
  },
  {
    what: 'an architecture SwarmBee does not import',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => setKv(l, { key: 'general.architecture', type: 'string', value: 'mamba' }),
    code: ModelUnsupportedError.code,
    names: /general\.architecture "mamba"/,
  },
  {
    what: 'a vocabulary that disagrees with the embedding',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => {
      for (const key of [
        'tokenizer.ggml.tokens',
        'tokenizer.ggml.scores',
        'tokenizer.ggml.token_type',
      ]) {
        const kv = l.kv.find((k) => k.key === key)!;
        kv.value = (kv.value as unknown[]).slice(0, 500);
      }
    },
    code: GgufInvalidError.code,
    names: /tokenizer\.ggml\.tokens lists 500 tokens but tensor token_embd\.weight has 512 rows/,
  },
  {
    what: 'a v1 layout (32-bit counts) claiming to be v3',
    source: SHARED_GGUF.stories260kF32,
    bytes: (l) => ggufBytes({ ...l, counts32: true }),
    code: GgufInvalidError.code,
    names: /does not parse as GGUF v3/,
  },
  {
    what: 'a version GGUF does not have',
    source: SHARED_GGUF.stories260kF32,
    bytes: (l) => ggufBytes({ ...l, version: 4 }),
    code: GgufInvalidError.code,
    names: /GGUF version 4 is not read/,
  },
  {
    what: 'a mixture of experts',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => setKv(l, { key: 'llama.expert_count', type: 'uint32', value: 8 }),
    code: ModelUnsupportedError.code,
    names: /llama\.expert_count is 8/,
  },
  {
    what: 'RoPE factors of the wrong length',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => {
      l.tensors.push({ name: 'rope_freqs.weight', ne: [3], typeId: 0, data: new Uint8Array(12) });
    },
    code: GgufInvalidError.code,
    names: /tensor rope_freqs\.weight is \[3\].*expected 4 F32 factors/,
  },
  {
    what: 'a missing tensor',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => drop(l, 'blk.2.ffn_up.weight'),
    code: GgufInvalidError.code,
    names: /tensor blk\.2\.ffn_up\.weight is missing/,
  },
  {
    what: 'a tensor the graph has no place for',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => {
      l.tensors.push({
        name: 'blk.0.attn_output.bias',
        ne: [64],
        typeId: 0,
        data: new Uint8Array(256),
      });
    },
    code: ModelUnsupportedError.code,
    names: /tensor blk\.0\.attn_output\.bias has no place/,
  },
  {
    what: 'a tensor shaped against the hyper-parameters',
    source: SHARED_GGUF.stories260kF32,
    edit: (l) => setKv(l, { key: 'llama.feed_forward_length', type: 'uint32', value: 171 }),
    code: GgufInvalidError.code,
    names: /tensor blk\.0\.ffn_gate\.weight is \[64, 172\]/,
  },
];

t.test(
  'BAD GGUF - each malformation is refused by code, naming the file and what is wrong',
  async (t) => {
    if (!haveSharedModel(t, SHARED_GGUF.synthqF32)) return;
    const root = t.testdir();
    for (const [i, c] of CASES.entries()) {
      const layout = await readGgufLayout(c.source);
      const file = join(root, `case-${i}.gguf`);
      c.edit?.(layout);
      if (c.bytes) await writeFile(file, c.bytes(layout));
      else await writeGguf(file, layout);
      const out = join(root, `out-${i}`);
      const error = await importGguf({ file, out }).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      t.equal(error?.code, c.code, `${c.what}: ${c.code}`);
      t.match(error?.message ?? '', basename(file), 'the message names the file');
      t.match(error?.message ?? '', c.names, `… and says: ${error?.message}`);
    }
    t.same(
      (await readdir(root)).filter((n) => !n.endsWith('.gguf')),
      [],
      'no model dir, partial or staging dir was left behind',
    );
  },
);

t.test('the test writer reproduces a llama.cpp file: the same import, byte for byte', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.stories260kF16)) return;
  const root = t.testdir();
  const copy = join(root, 'copy.gguf');
  await writeGguf(copy, await readGgufLayout(SHARED_GGUF.stories260kF16));
  const a = await importGguf({ file: SHARED_GGUF.stories260kF16, out: join(root, 'a') });
  const b = await importGguf({ file: copy, out: join(root, 'b') });
  t.equal(b.manifest.weights.sha256, a.manifest.weights.sha256, 'same weights');
  t.equal(b.manifest.tokenizer?.sha256, a.manifest.tokenizer?.sha256, 'same tokenizer');
});
