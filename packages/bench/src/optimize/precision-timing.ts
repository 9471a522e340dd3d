/**
 * How much faster a quantized layer runs than an fp32 one, measured: one middle layer of
 * the model, in memory at fp32, int8 and int4, timed alternately (decode steps at a short
 * context, and prefill chunks) on this machine, medians taken. The deployment search
 * scales a profile's fp32 layer times by these factors; `bytes` is the alternative that
 * needs no measurement (decode time ∝ weight bytes, prefill unchanged) and is optimistic
 * where kernels, not memory, bound a step.
 */
import { createStageEngine, type StageEngine, type StageOptions } from '@swarmbee/engine';
import {
  type LlamaModelDir,
  type ProgressFn,
  quantizedLayout,
  VariantBuilder,
} from '@swarmbee/model';
import type { PrecisionTimeScale, QuantizedPrecision } from '@swarmbee/planner';
import { summarize } from '../stats.js';

export type PrecisionTimeScales = Record<QuantizedPrecision, PrecisionTimeScale>;

/** Decode ∝ linear-weight bytes of a layer (norms included); prefill unchanged. */
export function byteTimeScales(
  fp32LayerBytes: number,
  layerBytes: Record<QuantizedPrecision, number>,
): PrecisionTimeScales {
  return {
    int8: { decode: layerBytes.int8 / fp32LayerBytes, prefill: 1 },
    int4: { decode: layerBytes.int4 / fp32LayerBytes, prefill: 1 },
  };
}

/** Param bytes of every layer of an fp32 model at int8 and int4 (norms stay fp32). */
export function quantizedLayerBytes(
  dir: LlamaModelDir,
  blockSize: number,
): Record<QuantizedPrecision, number[]> {
  const { manifest } = dir;
  const byLayer = (bits: 8 | 4) =>
    manifest.layers.map((cost, l) => {
      let bytes = cost.paramBytes;
      for (const tensor of manifest.weights.tensors) {
        if (!tensor.name.startsWith(`layers.${l}.`) || tensor.shape.length !== 2) continue;
        const [rows, cols] = tensor.shape as [number, number];
        if (tensor.name.endsWith('.scales') || tensor.name.endsWith('.zero_points')) continue;
        bytes += quantizedLayout(rows, cols, bits, blockSize).bytes - tensor.bytes;
      }
      return bytes;
    });
  return { int8: byLayer(8), int4: byLayer(4) };
}

async function timeStage(stage: StageEngine, dim: number, steps: number, chunk: number) {
  const seqId = `timing-${Math.random().toString(36).slice(2)}`;
  const hidden = (tokens: number) => new Float32Array(tokens * dim).fill(0.01);
  const decode: number[] = [];
  try {
    await stage.forward({ rows: [{ seqId, start: 0, count: 16 }], hidden: hidden(16) });
    for (let i = 0; i < steps; i++) {
      const started = performance.now();
      await stage.forward({
        rows: [{ seqId, start: 16 + i, count: 1 }],
        hidden: hidden(1),
      });
      decode.push(performance.now() - started);
    }
  } finally {
    await stage.release([seqId]);
  }
  const started = performance.now();
  const prefillId = `${seqId}-prefill`;
  await stage.forward({
    rows: [{ seqId: prefillId, start: 0, count: chunk }],
    hidden: hidden(chunk),
  });
  const prefill = performance.now() - started;
  await stage.release([prefillId]);
  return { decode, prefill };
}

/** Measured factors. A middle layer is timed alone, so the model needs at least 3 layers. */
export async function measureTimeScales(
  dir: LlamaModelDir,
  options: {
    blockSize?: number;
    rounds?: number;
    steps?: number;
    stage?: StageOptions;
    progress?: ProgressFn;
  } = {},
): Promise<PrecisionTimeScales> {
  const builder = new VariantBuilder(
    dir,
    options.blockSize ? { blockSize: options.blockSize } : {},
  );
  const { dim, nLayers } = dir.manifest.config;
  const layer = Math.floor(nLayers / 2);
  const precisions = ['fp32', 'int8', 'int4'] as const;
  const stages: StageEngine[] = [];
  const rounds = options.rounds ?? 5;
  const steps = options.steps ?? 16;
  try {
    for (const p of precisions) {
      const variant = p === 'fp32' ? {} : { precision: { [layer]: p } };
      stages.push(
        await createStageEngine(
          await builder.shard(variant, { start: layer, end: layer + 1 }),
          options.stage,
        ),
      );
    }
    const decode = precisions.map(() => [] as number[]);
    const prefill = precisions.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      for (const [i, stage] of stages.entries()) {
        const run = await timeStage(stage, dim, steps, 64);
        if (r > 0) {
          decode[i]!.push(...run.decode);
          prefill[i]!.push(run.prefill);
        }
      }
      options.progress?.({ phase: 'time precisions', done: r + 1, total: rounds, unit: 'steps' });
    }
    const median = (xs: number[]) => summarize(xs).median;
    const scale = (i: number): PrecisionTimeScale => ({
      decode: median(decode[i]!) / median(decode[0]!),
      prefill: median(prefill[i]!) / median(prefill[0]!),
    });
    return { int8: scale(1), int4: scale(2) };
  } finally {
    await Promise.allSettled(stages.map((s) => s.close()));
  }
}
