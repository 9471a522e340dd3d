/**
 * The serving part of `npm run bench -- scale` (`--parts serve`): the chosen shapes (the
 * Llama 3.2 1B one with `--quick`) at int4 and int8, the LM head quantized too, served by 1,
 * 2 and 3 worker processes on loopback: worker load time and peak RSS against shard + KV +
 * 250 MB, decode tokens/s for 1 and 8 streams against the memory roofline, time to first
 * token of 512-token prompts, and the LM head's and sampler's share of a decode step.
 */
import { access, mkdir, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cacheRoot, type HfSynthShapeName, openModelDir } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { measureCopyBandwidth } from '../memory-bandwidth.js';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { runHeader, type SuiteContext } from '../suite.js';
import { type HeadShareRow, headShare } from './head-share.js';
import { servePart, WORKER_OVERHEAD_TARGET_BYTES } from './serve-part.js';
import { runStep } from './step.js';

/** One-worker, one-stream int4 decode against the memory roofline, at least. */
export const ROOFLINE_TARGET = 0.6;
const SEED = 0;
const MB = 1e6;

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Shapes served from a checkpoint imported straight to int4 (`model import hf --bits 4`, the
 * head quantized too): the 8B's fp32 dir (32 GB) rarely fits beside its checkpoint, and its
 * int8 is left out to bound the run (each straight import quantizes 16 GB on one core).
 */
const STRAIGHT_TO_INT4: readonly HfSynthShapeName[] = ['llama3.1-8b'];

/**
 * The quantized model dirs of a shape, made once and kept in the cache (the LM head quantized
 * too: an fp32 head over a Llama 3 vocabulary is most of a last stage's memory): int4 and int8
 * through an fp32 dir (deleted after), or int4 alone straight from the checkpoint for the
 * shapes of {@link STRAIGHT_TO_INT4}. The checkpoint is the steps part's.
 */
async function quantizedModels(
  shape: HfSynthShapeName,
  context: SuiteContext,
): Promise<{ bits: 4 | 8; dir: string }[]> {
  const checkpoint = join(cacheRoot(), 'bench', 'scale', `${shape}-seed${SEED}`);
  const root = join(cacheRoot(), 'bench', 'scale-serve', shape);
  const straight = STRAIGHT_TO_INT4.includes(shape);
  const out = (straight ? ([4] as const) : ([4, 8] as const)).map((bits) => ({
    bits,
    dir: join(root, `int${bits}-head`),
  }));
  const made = await Promise.all(out.map(({ dir }) => exists(join(dir, 'manifest.json'))));
  if (made.every(Boolean)) return out;
  await mkdir(root, { recursive: true });
  if (!(await exists(join(checkpoint, 'model.safetensors.index.json')))) {
    context.progress(`scale: serve: writing the ${shape} checkpoint`);
    await runStep({ kind: 'synth', shape, seed: SEED, out: checkpoint });
  }
  if (straight) {
    for (const { bits, dir } of out) {
      context.progress(`scale: serve: importing ${shape} straight to int${bits}`);
      await rm(dir, { recursive: true, force: true });
      await runStep({ kind: 'import', checkpoint, inBytes: 0, out: dir, bits, head: true });
    }
    return out;
  }
  const fp32 = join(root, 'fp32');
  context.progress(`scale: serve: importing ${shape}`);
  await rm(fp32, { recursive: true, force: true });
  await runStep({ kind: 'import', checkpoint, inBytes: 0, out: fp32 });
  try {
    for (const { bits, dir } of out) {
      context.progress(`scale: serve: quantizing ${shape} to int${bits}`);
      await rm(dir, { recursive: true, force: true });
      await runStep({ kind: 'quantize', model: fp32, bits, head: true, out: dir });
    }
  } finally {
    await rm(fp32, { recursive: true, force: true });
  }
  return out;
}

/** The serving part's result, for the scale suite to take in. */
export async function measureServing(
  context: SuiteContext,
  shapes: HfSynthShapeName[],
): Promise<BenchResult> {
  const started = Date.now();
  const models = [];
  for (const shape of shapes) {
    for (const { bits, dir } of await quantizedModels(shape, context))
      models.push({ label: `${shape} int${bits}`, dir: await openModelDir(dir) });
  }
  context.progress('scale: serve: measuring copy bandwidth');
  const bandwidthBytesPerS = measureCopyBandwidth();
  const { load, speed } = await servePart({
    models,
    workers: context.quick ? [1, 2] : [1, 2, 3],
    decodeTokens: context.quick ? 16 : 32,
    bandwidthBytesPerS,
    cliBin: context.cliBin,
    cacheDir: join(cacheRoot(), 'bench', 'scale-serve', 'clusters'),
    progress: context.progress,
  });
  const shares: HeadShareRow[] = [];
  for (const { label, dir } of models) {
    context.progress(`scale: serve: ${label}: LM head and sampler share of a decode step`);
    shares.push(await headShare(label, dir, availableParallelism()));
  }
  const checks: BenchCheck[] = load.map((r) =>
    check(
      `${r.model}, ${r.workers} worker(s), ${r.worker}: peak RSS − shard − KV (MB)`,
      r.overheadBytes / MB,
      WORKER_OVERHEAD_TARGET_BYTES / MB,
      'VmHWM of the worker process − its shard files − the KV its layers held at most',
      '<=',
    ),
  );
  for (const r of speed.filter((s) => s.workers === 1 && s.streams === 1 && /int4/.test(s.model)))
    checks.push(
      check(
        `${r.model}: one-worker decode / memory roofline`,
        r.roofline,
        ROOFLINE_TARGET,
        'tokens/s × weight bytes ÷ copy bandwidth (same run)',
      ),
    );
  const result: BenchResult = {
    suite: 'scale',
    title: 'Scale: serving real model shapes',
    ...runHeader(context, started),
    options: { quick: context.quick, shapes, bandwidthBytesPerS },
    notes: [
      'Serve: synthetic checkpoints (`swarmbee model synth-hf`, seed 0) imported and quantized with `optimize quantize --bits 4|8 --head` (block 32, int8 activations; the LM head quantized too: in fp32 over 128 256 tokens it is most of a last stage); the 8B shape is imported straight to int4 (`model import hf --bits 4`, head quantized too) and served at int4 only.',
      "Workers are `swarmbee worker` processes on loopback, the layers split evenly, onnxruntime threads = cores ÷ workers. Peak RSS is each worker process's VmHWM at the end of the runs.",
      "The step taken apart: one-layer shards timed in this process as the profiler times a device (first = embedding + layer 0, a middle layer, last = layer + norm + LM head); head = last − middle, step = first + (L − 2) × middle + last; sampling is the last stage's time after the forward pass.",
      `Roofline: tokens/s × the model's weight bytes ÷ copy bandwidth (${(bandwidthBytesPerS / 1e9).toFixed(1)} GB/s, read + written, measured in this run). Decode streams start from 16-token prompts; TTFT is the median of three 512-token prompts.`,
    ],
    metrics: Object.fromEntries(
      speed.map((s) => [
        `${s.model} ${s.workers}w ${s.streams}s tok/s`,
        { unit: 'tokens/s', summary: summarize([s.tokensPerS]) },
      ]),
    ),
    tables: [
      {
        title: 'Workers: load and memory',
        head: [
          'model',
          'workers',
          'worker',
          'layers',
          'shard MB',
          'KV MB',
          'load s',
          'peak RSS MB',
          'peak − shard − KV MB',
        ],
        rows: load.map((r) => [
          r.model,
          r.workers,
          r.worker,
          r.layers,
          (r.shardBytes / MB).toFixed(0),
          (r.kvBytes / MB).toFixed(1),
          (r.loadMs / 1000).toFixed(1),
          (r.peakRssBytes / MB).toFixed(0),
          (r.overheadBytes / MB).toFixed(0),
        ]),
      },
      {
        title: 'Decode and time to first token',
        head: ['model', 'workers', 'streams', 'tokens/s', 'of roofline', 'TTFT 512 s'],
        rows: speed.map((s) => [
          s.model,
          s.workers,
          s.streams,
          s.tokensPerS.toFixed(2),
          s.roofline.toFixed(2),
          (s.ttftMs / 1000).toFixed(2),
        ]),
      },
      {
        title: 'A decode step taken apart: LM head and sampling (one row, one process)',
        head: [
          'model',
          'step ms',
          'layer ms',
          'head ms',
          'head share',
          'greedy ms',
          'top-k 40 / top-p 0.9 ms',
          'sampled share',
        ],
        rows: shares.map((r) => [
          r.model,
          r.stepMs.toFixed(1),
          r.layerMs.toFixed(2),
          r.headMs.toFixed(1),
          (r.headMs / r.stepMs).toFixed(3),
          r.greedyMs.toFixed(2),
          r.sampledMs.toFixed(2),
          (r.sampledMs / (r.stepMs + r.sampledMs)).toFixed(3),
        ]),
      },
    ],
    checks,
    charts: [
      {
        file: 'decode.svg',
        title: 'Decode tokens/s by model, workers and streams',
        svg: barChart({
          title: 'Decode tokens/s',
          unit: 'tokens/s',
          bars: speed.map((s) => ({
            label: `${s.model} ${s.workers}w ${s.streams}s`,
            value: s.tokensPerS,
          })),
        }),
      },
    ],
  };
  return result;
}
