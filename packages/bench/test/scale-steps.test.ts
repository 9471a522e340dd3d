/**
 * The scale suite's steps stream: synthesizing, importing, quantizing and writing a shard
 * of a model whose embedding alone is 256 MiB (fp32) each grow their process's peak RSS
 * by far less than that one tensor — a step that read a whole tensor, let alone the
 * model, would fail. Each step runs in a child process of its own (as the suite runs
 * them), so the peak is that step's.
 */
import { join } from 'node:path';
import { HF_SYNTH_SHAPES, type HfSynthShape } from '@swarmbee/model';
import t from 'tap';
import { runStep, type StepMeasurement } from '../src/scale/step.js';

const MIB = 1024 * 1024;
/** Llama 3 structure with a 65536 × 1024 embedding: 128 MiB bf16 in, 256 MiB fp32 out. */
const WIDE: HfSynthShape = {
  description: 'llama3-wide (test)',
  config: {
    ...HF_SYNTH_SHAPES['llama3-tiny'].config,
    hidden_size: 1024,
    intermediate_size: 2048,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    head_dim: 128,
    num_hidden_layers: 1,
    vocab_size: 65536,
  },
  generation: HF_SYNTH_SHAPES['llama3-tiny'].generation,
};
const EMBEDDING_FP32_BYTES = 65536 * 1024 * 4;
/**
 * Growth allowed over the baseline: chunks of 4-8 MiB the garbage collector has not yet
 * reclaimed (about 60 MiB measured) and the quantized output of one matrix.
 */
const GROWTH_LIMIT_BYTES = EMBEDDING_FP32_BYTES / 3;

const growth = (m: StepMeasurement) => m.peakRssBytes - m.baselineRssBytes;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;

t.test('synth, import, quantize and shard each hold far less than one tensor', async (t) => {
  const root = t.testdir();
  const checkpoint = join(root, 'ckpt');
  const synth = await runStep({ kind: 'synth', shape: WIDE, seed: 1, out: checkpoint });
  const imported = await runStep({
    kind: 'import',
    checkpoint,
    inBytes: synth.outBytes,
    out: join(root, 'fp32'),
  });
  t.ok(imported.outBytes > 2 * synth.outBytes - MIB, 'fp32 is twice the bf16 checkpoint');
  const quantized = await runStep({
    kind: 'quantize',
    model: join(root, 'fp32'),
    bits: 8,
    out: join(root, 'int8'),
  });
  const shard = await runStep({
    kind: 'shard',
    model: join(root, 'fp32'),
    range: { start: 0, end: 1 },
    out: join(root, 'shard'),
  });
  t.ok(shard.outBytes > EMBEDDING_FP32_BYTES, 'the shard holds the embedding');
  for (const [name, m] of Object.entries({ synth, imported, quantized, shard })) {
    t.ok(
      growth(m) < GROWTH_LIMIT_BYTES,
      `${name}: peak RSS ${mib(m.peakRssBytes)} is ${mib(growth(m))} over its ${mib(m.baselineRssBytes)} baseline (< ${mib(GROWTH_LIMIT_BYTES)}; the embedding is ${mib(EMBEDDING_FP32_BYTES)})`,
    );
  }
});
