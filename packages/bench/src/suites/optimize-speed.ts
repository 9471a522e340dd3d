/**
 * The speed half of `npm run bench -- optimize`: the 110M synthetic preset at fp32, int8
 * and int4 — weight bytes and decode tokens/s, measured alternately in one process — plus
 * both precisions with exact (fp32) activations, which is why the defaults quantize them,
 * and the timing model the deployment search uses against what was measured.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WeightQuantization } from '@swarmbee/core';
import {
  BENCH_PRESET,
  cachedSynthModel,
  cacheRoot,
  DEFAULT_SYNTH_SEED,
  type LlamaModelDir,
  type ModelDir,
  openModelDir,
  QUANT_METHOD,
  quantizeModel,
  requireLlamaDir,
} from '@swarmbee/model';
import {
  measureModelDecodeSpeeds,
  measureTimeScales,
  quantizedLayerBytes,
} from '@swarmbee/optimize';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import type { SuiteContext } from '../suite.js';

/**
 * llama.cpp's Q8_0 of the same shape decodes about this fast with 2 threads on the
 * benchmark machine (measured outside this suite; a reference, not a baseline of the run).
 */
export const LLAMACPP_Q8_0_TOKENS_PER_S = 180;

export interface SuitePart {
  tables: BenchResult['tables'];
  checks: BenchCheck[];
  charts: BenchResult['charts'];
  metrics: BenchResult['metrics'];
  notes: string[];
}

interface Variant {
  label: string;
  bits?: 8 | 4;
  activations?: WeightQuantization['activations'];
}

const VARIANTS: Variant[] = [
  { label: 'fp32' },
  { label: 'int8', bits: 8, activations: 'int8' },
  { label: 'int4', bits: 4, activations: 'int8' },
  { label: 'int8, fp32 activations', bits: 8, activations: 'float32' },
  { label: 'int4, fp32 activations', bits: 4, activations: 'float32' },
];

/** A quantized copy of `base` in the cache, made on first use (reused by the finetune suite). */
export async function cachedQuantized(
  base: LlamaModelDir,
  bits: 8 | 4,
  activations: WeightQuantization['activations'],
): Promise<ModelDir> {
  const path = join(cacheRoot(), 'models', `${base.manifest.name}-int${bits}-${activations}`);
  const opened = await openModelDir(path).catch(() => undefined);
  const existing =
    opened?.manifest.architecture === 'llama' ? (opened as LlamaModelDir) : undefined;
  const step = existing?.manifest.derivedFrom?.steps[0];
  if (
    existing &&
    existing.manifest.derivedFrom?.fromModelHash === base.manifest.modelHash &&
    step?.kind === 'quantize' &&
    step.bits === bits &&
    step.activations === activations &&
    step.method === QUANT_METHOD
  ) {
    return existing;
  }
  await rm(path, { recursive: true, force: true });
  return quantizeModel(base, { bits, activations, out: path });
}

export async function speedPart(context: SuiteContext): Promise<SuitePart & { model: ModelDir }> {
  context.progress(
    `optimize: the ${BENCH_PRESET} synthetic model and its int8/int4 copies (cached)`,
  );
  const base = requireLlamaDir(await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED), 'bench');
  const dirs: ModelDir[] = [];
  for (const v of VARIANTS)
    dirs.push(v.bits ? await cachedQuantized(base, v.bits, v.activations!) : base);
  context.progress('optimize: decode tokens/s, 2 threads, models alternating');
  const speeds = await measureModelDecodeSpeeds(
    dirs.map((dir, i) => ({ label: VARIANTS[i]!.label, dir })),
    { steps: 16, rounds: context.quick ? 3 : 7, stage: { intraOpThreads: 2 } },
  );
  context.progress('optimize: one layer at each precision (the search timing model)');
  const scales = await measureTimeScales(base, {
    stage: { intraOpThreads: 2 },
    steps: context.quick ? 64 : 240,
  });
  const fp32 = speeds[0]!;
  const bytes = dirs.map((d) => d.manifest.weights.bytes);
  const layerBytes = (d: ModelDir) => d.manifest.layers.reduce((s, l) => s + l.paramBytes, 0);
  const ratio = (i: number) => speeds[i]!.tokensPerSecond / fp32.tokensPerSecond;
  const fmt = (v: number, digits = 1) => v.toFixed(digits);
  const quantBytes = quantizedLayerBytes(base, 32);
  const fp32Layer = base.manifest.layers[0]!.paramBytes;
  const checks = [
    check(
      'int4 weights vs fp32',
      bytes[2]! / bytes[0]!,
      0.2,
      'weights.bin bytes, int4 / fp32',
      '<=',
    ),
    check('int4 decode vs fp32', ratio(2), 1.5, 'decode tok/s, int4 / fp32 (medians, alternating)'),
    check('int8 decode vs fp32', ratio(1), 1.5, 'decode tok/s, int8 / fp32 (medians, alternating)'),
  ];
  const metrics: BenchResult['metrics'] = {};
  speeds.forEach((s, i) => {
    metrics[`decodeStepMs.${VARIANTS[i]!.label.replace(/[^a-z0-9]+/g, '-')}`] = {
      unit: 'ms',
      summary: s.stepMs,
      samples: s.samples,
    };
  });
  return {
    model: base,
    metrics,
    checks,
    notes: [
      `110M: ${BENCH_PRESET} synthetic preset (random weights), batch 1, one stage in a worker thread, 2 onnxruntime threads, context 16. Every model stays loaded and rounds of 16 decode steps alternate between them; the first round is a warm-up. Figures are medians, spread p5..p95.`,
      'Quantized linear layers run onnxruntime\'s com.microsoft MatMulNBits (block 32, asymmetric, zero points). "fp32 activations" is accuracy_level 0: onnxruntime 1.30\'s CPU kernel then dequantizes the int8 weights on every call, slower than fp32. The default quantizes each block of activations to int8 (accuracy_level 4), as llama.cpp does for its quantized formats.',
      `llama.cpp Q8_0 of the same shape: about ${LLAMACPP_Q8_0_TOKENS_PER_S} tok/s with 2 threads on this machine (a reference measured outside this run).`,
    ],
    tables: [
      {
        title: '110M: weights and decode speed',
        head: [
          'model',
          'weights',
          'vs fp32',
          'decode tok/s',
          'ms/token (p5..p95)',
          'vs fp32',
          'vs llama.cpp Q8_0',
        ],
        rows: speeds.map((s, i) => [
          s.label,
          `${fmt(bytes[i]! / 2 ** 20)} MiB`,
          fmt(bytes[i]! / bytes[0]!, 3),
          fmt(s.tokensPerSecond),
          `${fmt(s.stepMs.median, 2)} (${fmt(s.stepMs.p5, 2)}..${fmt(s.stepMs.p95, 2)})`,
          fmt(ratio(i), 2),
          fmt(s.tokensPerSecond / LLAMACPP_Q8_0_TOKENS_PER_S, 2),
        ]),
      },
      {
        title:
          "110M: timing model of the deployment search (a layer's decode time as a share of fp32)",
        head: [
          'precision',
          'bytes model',
          'one layer, measured',
          'whole model, measured (1 / speed-up)',
        ],
        rows: (['int8', 'int4'] as const).map((p, i) => [
          p,
          fmt(quantBytes[p][0]! / fp32Layer, 3),
          fmt(scales[p].decode, 3),
          fmt(1 / ratio(i + 1), 3),
        ]),
      },
      {
        title: '110M: layer bytes',
        head: ['model', 'decoder layers', 'embedding + head'],
        rows: dirs
          .slice(0, 3)
          .map((d, i) => [
            VARIANTS[i]!.label,
            `${fmt(layerBytes(d) / 2 ** 20)} MiB`,
            `${fmt((d.manifest.embeddingBytes + d.manifest.headBytes) / 2 ** 20, 2)} MiB`,
          ]),
      },
    ],
    charts: [
      {
        file: 'weights-110m.svg',
        title: 'Weight bytes, 110M',
        svg: barChart({
          title: `Weight bytes, ${base.manifest.name}`,
          unit: 'MiB',
          bars: dirs.slice(0, 3).map((d, i) => ({
            label: VARIANTS[i]!.label,
            value: d.manifest.weights.bytes / 2 ** 20,
          })),
        }),
      },
      {
        file: 'decode-110m.svg',
        title: 'Decode tokens/s, 110M',
        svg: barChart({
          title: 'Decode tokens/s, 110M, 2 threads (llama.cpp Q8_0: reference)',
          unit: 'tokens/s',
          bars: [
            ...speeds.map((s) => ({
              label: s.label.replace(', fp32 activations', ' exact'),
              value: s.tokensPerSecond,
              low: 1000 / s.stepMs.p95,
              high: 1000 / s.stepMs.p5,
            })),
            { label: 'llama.cpp Q8_0', value: LLAMACPP_Q8_0_TOKENS_PER_S },
          ],
        }),
      },
    ],
  };
}
