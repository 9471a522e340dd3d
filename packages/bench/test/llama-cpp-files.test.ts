/**
 * The engine suite's peer files: llama.cpp's own tools make F32, Q8_0 and Q4_0 GGUF files of a
 * SwarmBee model dir (through its llama2.c export), once per model hash. Needs llama.cpp:
 * $SWARMBEE_LLAMA_CPP or llama-bench on PATH, with llama-convert-llama2c-to-ggml and
 * llama-quantize beside it; skipped with a message without it.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { findLlamaBench } from '@swarmbee/bench';
import { openGguf, requireLlamaDir, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';
import { findGgufFiles, llamaCppGgufFiles } from '../src/gguf/llama-cpp-files.js';

t.test('a dir of files is read as <name>-f32/-q8_0/-q4_0.gguf of one model', async (t) => {
  const dir = t.testdir({
    'a-f32.gguf': '',
    'a-q8_0.gguf': '',
    'b-f32.gguf': '',
    'a-q4_0.gguf': '',
  });
  t.same(await findGgufFiles(dir), {
    f32: join(dir, 'a-f32.gguf'),
    q8_0: join(dir, 'a-q8_0.gguf'),
    q4_0: join(dir, 'a-q4_0.gguf'),
  });
  await t.rejects(findGgufFiles(t.testdir({ 'b-f32.gguf': '' })), /needs all three/);
});

t.test("llama.cpp's tools make the three files from a model dir, once", async (t) => {
  const llamaBench = await findLlamaBench(process.env.SWARMBEE_LLAMA_CPP);
  if (!llamaBench) {
    t.plan(0, 'llama.cpp not found ($SWARMBEE_LLAMA_CPP or llama-bench on PATH)');
    return;
  }
  const root = t.testdir();
  const cache = process.env.SWARMBEE_CACHE_DIR;
  process.env.SWARMBEE_CACHE_DIR = join(root, 'cache');
  t.teardown(() => {
    if (cache === undefined) delete process.env.SWARMBEE_CACHE_DIR;
    else process.env.SWARMBEE_CACHE_DIR = cache;
  });
  // The small preset: its widths are multiples of 32, so every type applies.
  const model = requireLlamaDir(
    await synthesizeModel({
      config: SYNTH_PRESETS.small.config,
      seed: 3,
      out: join(root, 'model'),
    }),
    'the test',
  );
  const files = await llamaCppGgufFiles(model, llamaBench, () => {});
  const types = async (file: string) =>
    new Set((await openGguf(file)).tensors.map((tensor) => tensor.typeId));
  t.ok((await types(files.f32)).has(0), 'F32 holds f32 tensors');
  t.ok((await types(files.q8_0)).has(8), 'Q8_0 holds q8_0 tensors');
  t.ok((await types(files.q4_0)).has(2), 'Q4_0 holds q4_0 tensors');
  const made = (await stat(files.q4_0)).mtimeMs;
  const again = await llamaCppGgufFiles(model, llamaBench, () => {
    throw new Error('made again');
  });
  t.same(again, files);
  t.equal((await stat(files.q4_0)).mtimeMs, made, 'cached by model hash');
});
