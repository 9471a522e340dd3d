/**
 * Quantized GGUFs made by llama-quantize (synthq: random weights, dimensions that fit every
 * block type): SwarmBee's logits are within 1e-3 of an fp64 forward pass over the exactly
 * dequantized weights (make_fp64_reference.py, gguf-py's values), and its greedy ids agree
 * with llama.cpp's on every token but where llama.cpp's 8-bit activations move its choice
 * between tokens the fp64 reference cannot tell apart.
 */
import { join } from 'node:path';
import { importGguf } from '@swarmbee/model';
import t from 'tap';
import {
  agreementWithLlamaCpp,
  fp64Logits,
  teacherForcedLogits,
} from './helpers/gguf-agreement.js';
import { SHARED_GGUF } from './helpers/gguf-fixtures.js';
import { haveSharedModel } from './helpers/shared-models.js';

const FILES = [
  ['synthq-f32.gguf', SHARED_GGUF.synthqF32],
  ['synthq-q8_0.gguf', SHARED_GGUF.synthqQ8_0],
  ['synthq-q4_0.gguf', SHARED_GGUF.synthqQ4_0],
  ['synthq-q6_k.gguf', SHARED_GGUF.synthqQ6K],
  ['synthq-q4_k_m.gguf', SHARED_GGUF.synthqQ4KM],
  ['synthq-q5_k_m.gguf', SHARED_GGUF.synthqQ5KM],
] as const;

/** Within this of the fp64 logits: SwarmBee's fp32 arithmetic over the same weights. */
const LOGIT_TOLERANCE = 1e-3;

for (const [file, path] of FILES) {
  t.test(
    `${file}: logits within ${LOGIT_TOLERANCE} of fp64 over the exactly dequantized weights`,
    async (t) => {
      if (!haveSharedModel(t, path)) return;
      // Exact weights: K-quants dequantized (not re-quantized), activations not quantized.
      const dir = await importGguf({
        file: path,
        out: join(t.testdir(), 'exact'),
        requantize: 'fp32',
        activations: 'float32',
      });
      const reference = fp64Logits(file);
      for (const stages of [1, 2]) {
        const logits = await teacherForcedLogits(dir, reference.ids, stages);
        let worst = 0;
        for (let i = 0; i < logits.length; i++)
          worst = Math.max(worst, Math.abs(logits[i]! - reference.logits[i]!));
        t.ok(
          worst <= LOGIT_TOLERANCE,
          `${stages} stage${stages > 1 ? 's' : ''}: ${reference.ids.length} positions, largest difference ${worst.toExponential(2)}`,
        );
      }
    },
  );
}

t.test('greedy ids against llama.cpp’s: agreement per file', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.synthqQ4_0)) return;
  const rows: string[] = [];
  for (const [file, path] of FILES) {
    // As a user imports it: lossless where the type allows, int8 otherwise, int8 activations.
    const dir = await importGguf({ file: path, out: join(t.testdir(), file) });
    const row = await agreementWithLlamaCpp(file, dir);
    const unexplained = row.positions - row.agree - row.explained;
    rows.push(
      `${file} | ${row.firstDivergence.join(', ')} | ${row.agree}/${row.positions} | ${row.explained} | ${unexplained} | ${row.noise.toFixed(3)} | ${row.agreeFp64}/${row.positions}`,
    );
    t.ok(
      (row.agree + row.explained) / row.positions >= 0.95,
      `${file}: ${row.agree} of ${row.positions} teacher-forced tokens are llama.cpp's, ${row.explained} more within its own noise (${row.noise.toFixed(3)} logits)`,
    );
  }
  t.comment(
    [
      "file | free-running: same tokens before the first difference (3 prompts) | teacher-forced agreement | differences within llama.cpp's noise | other | llama.cpp's noise (fp64 logits) | SwarmBee = fp64 argmax",
      ...rows,
    ].join('\n'),
  );
});
