/**
 * The gguf suite's peer: llama-bench is found where it is said to be (or on PATH) and its
 * JSON read back; absent, nothing is found rather than a guess. The runner is checked
 * against a stand-in executable that prints what llama-bench printed on this machine.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findLlamaBench, parseLlamaBench, runLlamaBench } from '@swarmbee/bench';
import t from 'tap';

/** llama-bench -p 128 -n 32 -t 2 -o json at llama.cpp c392e509, trimmed to the fields read. */
const OUTPUT = JSON.stringify([
  { model_filename: 'stories110m-q4_0.gguf', n_prompt: 128, n_gen: 0, avg_ts: 26.363901 },
  { model_filename: 'stories110m-q4_0.gguf', n_prompt: 0, n_gen: 32, avg_ts: 6.858239 },
]);

t.test('llama-bench JSON: prefill and decode tokens/s', async (t) => {
  t.same(parseLlamaBench(OUTPUT), {
    prefillTokensPerSecond: 26.363901,
    decodeTokensPerSecond: 6.858239,
  });
  t.throws(() => parseLlamaBench('[]'), /no prefill and decode figures/);
});

t.test('found in a given dir, in its bin/, or on PATH; else undefined', async (t) => {
  const root = t.testdir();
  const bin = join(root, 'build', 'bin');
  await mkdir(bin, { recursive: true });
  const fake = join(bin, 'llama-bench');
  await writeFile(fake, `#!/bin/sh\nprintf '%s' '${OUTPUT}'\n`);
  await chmod(fake, 0o755);
  t.equal(await findLlamaBench(root), fake, 'DIR/build/bin');
  t.equal(await findLlamaBench(bin), fake, 'DIR itself');
  t.equal(await findLlamaBench(undefined, { PATH: `/nonexistent:${bin}` }), fake, 'PATH');
  t.equal(await findLlamaBench(undefined, { PATH: '/nonexistent' }), undefined, 'nowhere');
  t.equal(await findLlamaBench(join(root, 'empty')), undefined, 'not in the dir given');
  t.same(
    await runLlamaBench(fake, 'model.gguf', { promptTokens: 128, decodeTokens: 32, threads: 2 }),
    {
      prefillTokensPerSecond: 26.363901,
      decodeTokensPerSecond: 6.858239,
    },
  );
});
