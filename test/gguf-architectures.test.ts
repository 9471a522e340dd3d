/**
 * GGUF architectures beside llama: stories260K's weights laid out as llama.cpp lays out
 * qwen2 (NEOX RoPE, q/k/v biases) and phi3 (fused q/k/v and gate/up, a sliding window)
 * files, and as a llama file with `rope_freqs.weight` (Llama 3.1-style per-frequency RoPE
 * divisors), give llama.cpp's greedy ids for them (arch-reference.json, from llama-server).
 * qwen3 and gemma3, which that llama.cpp predates, are in gguf-families.test.ts.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelUnsupportedError } from '@swarmbee/core';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { importGguf, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import {
  ARCH_VARIANTS,
  archVariantLayout,
  writeArchVariant,
} from './helpers/gguf-arch-variants.js';
import { GGUF_FIXTURES_DIR, type LlamaCppGreedy, SHARED_GGUF } from './helpers/gguf-fixtures.js';
import { setKv, writeGguf } from './helpers/gguf-writer.js';
import { haveSharedModel } from './helpers/shared-models.js';

const reference = JSON.parse(
  readFileSync(join(GGUF_FIXTURES_DIR, 'arch-reference.json'), 'utf8'),
) as Record<string, LlamaCppGreedy[]>;
const GREEDY = { temperature: 0, topK: 0, topP: 1 };

for (const arch of ARCH_VARIANTS) {
  t.test(`${arch}: llama.cpp's prompt ids and greedy ids, in 1 and 2 stages`, async (t) => {
    if (!haveSharedModel(t, SHARED_GGUF.stories260kF32)) return;
    const root = t.testdir();
    const file = join(root, `stories260K-${arch}.gguf`);
    await writeArchVariant(arch, file);
    const dir = await importGguf({ file, out: join(root, 'model') });
    t.equal(
      dir.manifest.source.kind === 'gguf' && dir.manifest.source.architecture,
      arch === 'ropefreqs' ? 'llama' : arch,
      'recorded as its architecture',
    );
    const runs = reference[arch]!;
    const tokenizer = await loadTokenizer(dir);
    for (const run of runs)
      t.same(
        tokenizer.encode(run.prompt),
        run.prompt_ids,
        `"${run.prompt}" encodes to llama.cpp's ids`,
      );
    for (const stages of [1, 2]) {
      const pipeline = await LocalPipeline.create(dir, { stages });
      try {
        const results = await generate(
          pipeline,
          runs.map((run) => ({
            promptIds: run.prompt_ids,
            steps: run.prompt_ids.length + run.greedy_ids.length - 1,
            sampling: GREEDY,
            stopIds: [],
          })),
        );
        results.forEach((r, i) => {
          t.same(
            r.ids.slice(r.promptTokens),
            runs[i]!.greedy_ids,
            `${stages} stage(s): "${runs[i]!.prompt}" → llama.cpp's ids`,
          );
        });
      } finally {
        await pipeline.close();
      }
    }
  });
}

t.test(
  'a sliding window shorter than the context imports only with a context within it',
  async (t) => {
    if (!haveSharedModel(t, SHARED_GGUF.stories260kF32)) return;
    const root = t.testdir();
    const layout = await archVariantLayout('phi3');
    setKv(layout, { key: 'phi3.attention.sliding_window', type: 'uint32', value: 64 });
    const file = join(root, 'window.gguf');
    await writeGguf(file, layout);
    await t.rejects(importGguf({ file, out: join(root, 'a') }), {
      code: ModelUnsupportedError.code,
      message: /phi3\.attention\.sliding_window 64 is shorter than the context 128.*--context 64/,
    });
    const dir = await importGguf({ file, out: join(root, 'b'), contextLength: 64 });
    t.equal(dir.manifest.config.maxSeqLen, 64, 'recorded with the shorter context');
  },
);
