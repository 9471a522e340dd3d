/**
 * BAD INPUT - a checkpoint the disk cannot hold once converted: `importHf` and
 * `synthesizeHfCheckpoint` refuse it up front with SWARMBEE_ERR_DISK_SPACE naming the bytes
 * needed and free, and leave nothing behind. The checkpoint is real in every byte that is
 * read — config.json and the safetensors header — and sparse beyond it: 550 GB of bf16
 * that would be 1.1 TB of fp32.
 */
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskSpaceError } from '@swarmbee/core';
import t from 'tap';
import { importHf } from '../src/hf/import.js';
import { safetensorsHeader, tensorBytes } from '../src/hf/safetensors-stream.js';
import { hfSynthTensors, synthesizeHfCheckpoint } from '../src/synth/hf-checkpoint.js';
import { HF_SYNTH_SHAPES, type HfSynthShape } from '../src/synth/hf-shapes.js';

const HUGE: HfSynthShape = {
  description: 'huge (test)',
  config: {
    ...HF_SYNTH_SHAPES['llama3-tiny'].config,
    hidden_size: 16384,
    head_dim: 128,
    num_attention_heads: 128,
    num_key_value_heads: 8,
    intermediate_size: 16384,
    num_hidden_layers: 1,
    vocab_size: 16 * 1024 * 1024,
  },
  generation: {},
};

t.test('BAD INPUT - import of a checkpoint larger than the free disk', async (t) => {
  const root = t.testdir();
  const ckpt = join(root, 'ckpt');
  await mkdir(ckpt);
  await writeFile(join(ckpt, 'config.json'), JSON.stringify(HUGE.config));
  const tensors = hfSynthTensors(HUGE);
  const header = safetensorsHeader(tensors);
  const file = await open(join(ckpt, 'model.safetensors'), 'w');
  await file.write(header);
  await file.truncate(header.length + tensors.reduce((sum, x) => sum + tensorBytes(x), 0));
  await file.close();
  await t.rejects(importHf({ dir: ckpt, out: join(root, 'model'), tokenizer: false }), {
    code: DiskSpaceError.code,
    message:
      /needs \d+ bytes \([\d.]+ GiB\) at .*model but the disk has \d+ bytes \([\d.]+ GiB\) free/,
  });
  t.same((await readdir(root)).sort(), ['ckpt'], 'no model dir, no partial dir');
});

t.test('BAD INPUT - synth-hf of a shape larger than the free disk', async (t) => {
  const root = t.testdir();
  await t.rejects(synthesizeHfCheckpoint({ shape: HUGE, seed: 0, out: join(root, 'ckpt') }), {
    code: DiskSpaceError.code,
    message: /the huge \(test\) checkpoint needs \d+ bytes/,
  });
  t.same(await readdir(root), [], 'nothing written');
});
