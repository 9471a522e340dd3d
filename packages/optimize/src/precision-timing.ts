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
import { summarize } from './stats.js';

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

/** Times one forward pass of `count` new tokens of sequence `seqId` at position `start`. */
async function timeForward(
  stage: StageEngine,
  dim: number,
  seqId: string,
  start: number,
  count: number,
): Promise<number> {
  const hidden = new Float32Array(count * dim).fill(0.01);
  const started = performance.now();
  await stage.forward({ rows: [{ seqId, start, count }], hidden });
  return performance.now() - started;
}

/**
 * Measured factors. A middle layer is timed alone (so the model needs at least 3 layers)
 * at each precision; the three run back to back, step by step, and each factor is the
 * median over steps of the quantized step's time over the fp32 step's beside it — paired
 * like this, a burst of load elsewhere hits both sides of a ratio alike.
 */
export async function measureTimeScales(
  dir: LlamaModelDir,
  options: {
    blockSize?: number;
    /** Decode steps per precision. Default 160. */
    steps?: number;
    /** Prefill chunks of 64 tokens per precision. Default 6. */
    chunks?: number;
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
  const steps = options.steps ?? 160;
  const chunks = options.chunks ?? 6;
  const seq = (i: number) => `timing-${process.pid}-${i}`;
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
    const context = 16;
    for (const [i, stage] of stages.entries()) await timeForward(stage, dim, seq(i), 0, context);
    const decode: number[][] = [[], []];
    for (let step = 0; step <= steps; step++) {
      const times: number[] = [];
      for (const [i, stage] of stages.entries()) {
        times.push(await timeForward(stage, dim, seq(i), context + step, 1));
      }
      // The first step of each is a warm-up.
      if (step > 0) for (const q of [0, 1]) decode[q]!.push(times[q + 1]! / times[0]!);
      if (step % 8 === 0)
        options.progress?.({
          phase: 'time precisions',
          done: step,
          total: steps + chunks,
          unit: 'steps',
        });
    }
    const prefill: number[][] = [[], []];
    for (let chunk = 0; chunk < chunks; chunk++) {
      const times: number[] = [];
      for (const [i, stage] of stages.entries()) {
        const id = `${seq(i)}-prefill-${chunk}`;
        times.push(await timeForward(stage, dim, id, 0, 64));
        await stage.release([id]);
      }
      for (const q of [0, 1]) prefill[q]!.push(times[q + 1]! / times[0]!);
      options.progress?.({
        phase: 'time precisions',
        done: steps + chunk + 1,
        total: steps + chunks,
        unit: 'steps',
      });
    }
    const median = (xs: number[]) => summarize(xs).median;
    const scale = (q: number): PrecisionTimeScale => ({
      decode: median(decode[q]!),
      prefill: median(prefill[q]!),
    });
    return { int8: scale(0), int4: scale(1) };
  } finally {
    await Promise.allSettled(stages.map((s) => s.close()));
  }
}
