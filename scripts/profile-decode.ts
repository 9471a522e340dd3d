/**
 * Where one decode step's graph run goes, by operator type, from onnxruntime's own profiler:
 * the 110M benchmark preset at fp32, int8 or int4, one in-process stage, 16-token prompt,
 * then greedy decode steps (the prefill is left out). Prints the nodes run per step and each
 * operator type's share of kernel time, and the LM head's (GatherND + the head's Gemm or
 * MatMulNBits). The breakdown of a whole step (graph run, feeds, KV, sampling, thread hop) is
 * the engine suite's; this splits its first part.
 *
 *     node --conditions=swarmbee:source --import tsx scripts/profile-decode.ts [fp32|int8|int4] [threads] [steps]
 *
 * The profile JSON is written to the system temp dir and removed after reading.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedQuantized } from '@swarmbee/bench';
import { createStageEngine } from '@swarmbee/engine';
import {
  BENCH_PRESET,
  buildShard,
  cachedSynthModel,
  DEFAULT_SYNTH_SEED,
  requireLlamaDir,
} from '@swarmbee/model';
import ort from 'onnxruntime-node';

const precision = process.argv[2] ?? 'int4';
const threads = Number(process.argv[3] ?? 2);
const steps = Number(process.argv[4] ?? 32);
if (!['fp32', 'int8', 'int4'].includes(precision))
  throw new Error(`unknown precision ${precision}`);

// The stage builds its own session options; this turns the profiler on for it.
const prefix = join(tmpdir(), `swarmbee-profile-${process.pid}`);
const create = ort.InferenceSession.create.bind(ort.InferenceSession);
Object.assign(ort.InferenceSession, {
  create: (model: Uint8Array, options: ort.InferenceSession.SessionOptions) =>
    create(model, { ...options, enableProfiling: true, profileFilePrefix: prefix }),
});

const base = requireLlamaDir(await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED), 'profile');
const dir =
  precision === 'fp32' ? base : await cachedQuantized(base, precision === 'int8' ? 8 : 4, 'int8');
const { nLayers, vocabSize } = base.manifest.config;
const stage = await createStageEngine(buildShard(dir, { start: 0, end: nLayers }), {
  intraOpThreads: threads,
});
const greedy = { temperature: 0, topK: 0, topP: 1 };
const prompt = BigInt64Array.from({ length: 16 }, (_, i) =>
  BigInt(1 + ((i * 7919) % (vocabSize - 1))),
);
let out = await stage.forward({
  rows: [{ seqId: 'p', start: 0, count: 16, sampling: greedy }],
  tokens: prompt,
});
for (let i = 0; i < steps; i++) {
  if (out.kind !== 'tokens') throw new Error('expected tokens');
  out = await stage.forward({
    rows: [{ seqId: 'p', start: 16 + i, count: 1, sampling: greedy }],
    tokens: BigInt64Array.of(BigInt(out.tokens[0]!)),
  });
}
await stage.close(); // onnxruntime writes the profile as the session ends

interface ProfileEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}
const file = (await readdir(tmpdir())).find((f) => f.startsWith(`swarmbee-profile-${process.pid}`));
if (!file) throw new Error('onnxruntime wrote no profile');
const path = join(tmpdir(), file);
const events = JSON.parse(await readFile(path, 'utf8')) as ProfileEvent[];
await rm(path);
const runs = events.filter((e) => e.name === 'model_run').slice(1); // the prefill is run 0
const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const byOp = new Map<string, { us: number; nodes: number }>();
let totalUs = 0;
let headUs = 0;
let nodes = 0;
for (const run of runs) {
  const inRun = kernels.filter((k) => k.ts >= run.ts && k.ts <= run.ts + run.dur);
  const last = inRun.findLastIndex((k) => k.args?.op_name === 'GatherND');
  inRun.forEach((k, i) => {
    const op = k.args?.op_name ?? '?';
    const entry = byOp.get(op) ?? { us: 0, nodes: 0 };
    entry.us += k.dur;
    entry.nodes++;
    byOp.set(op, entry);
    totalUs += k.dur;
    // The head: the GatherND picking the last position, and the matmul after it.
    if (last >= 0 && i >= last && /GatherND|Gemm|MatMul/.test(op)) headUs += k.dur;
  });
  nodes += inRun.length;
}
const n = runs.length;
const wall = runs.map((r) => r.dur).sort((a, b) => a - b)[n >> 1]!;
console.log(
  `${precision}, ${threads} thread(s), ${n} decode steps: ${nodes / n} nodes a step, graph run median ${(wall / 1000).toFixed(2)} ms, kernels ${(totalUs / n / 1000).toFixed(2)} ms a step; LM head ${((100 * headUs) / totalUs).toFixed(2)} %`,
);
console.log('| operator | nodes a step | share of kernel time |\n|---|---|---|');
for (const [op, { us, nodes: count }] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 12))
  console.log(`| ${op} | ${count / n} | ${((100 * us) / totalUs).toFixed(1)} % |`);
