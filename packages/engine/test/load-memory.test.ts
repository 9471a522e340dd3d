/**
 * A stage loads within its memory: a worker's peak RSS is the shard's bytes plus its KV
 * cache plus a constant, never twice the weights. Measured in a fresh process loading a
 * written shard of 176 MiB the way a worker does (openShard, ThreadedStage), against the
 * RSS that process had before loading. onnxruntime 1.30 holds each weight once after loading;
 * while loading, the weight being copied is resident twice (here at most 32 MiB), and the rest
 * is the stage thread, onnxruntime's arenas and the forward pass (94 MiB measured here under
 * tsx). Loading that kept a second copy of the weights would add another 176 MiB.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { synthesizeModel, writeShard } from '@swarmbee/model';
import t from 'tap';

/** Peak RSS allowed beyond the process's RSS before loading, the shard and the KV cache. */
const LOAD_OVERHEAD_LIMIT_MIB = 140;

t.test(
  'peak RSS while loading and serving a shard stays within shard + KV + a constant',
  async (t) => {
    const config = {
      dim: 1024,
      hiddenDim: 4096,
      nLayers: 3,
      nHeads: 16,
      nKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 1024,
      normEps: 1e-5,
      ropeTheta: 10000,
      sharedClassifier: true,
    };
    const root = t.testdir();
    const dir = await synthesizeModel({ config, seed: 1, out: join(root, 'model') });
    const shardDir = join(root, 'shard');
    await writeShard(dir, { start: 0, end: config.nLayers }, shardDir);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import=tsx',
        '--conditions=swarmbee:source',
        join(import.meta.dirname, 'load-memory-child.ts'),
        shardDir,
        '64',
        '32',
      ],
      { timeout: 120_000 },
    );
    const m = JSON.parse(stdout) as {
      baselineMib: number;
      peakMib: number;
      shardMib: number;
      kvMib: number;
    };
    t.ok(m.shardMib > 170, `the shard is ${m.shardMib.toFixed(0)} MiB`);
    t.ok(m.kvMib > 0, 'the prompt and decode steps filled a KV cache');
    const overheadMib = m.peakMib - m.baselineMib - m.shardMib - m.kvMib;
    t.ok(
      overheadMib <= LOAD_OVERHEAD_LIMIT_MIB,
      `peak ${m.peakMib.toFixed(0)} MiB = ${m.baselineMib.toFixed(0)} before loading + shard ${m.shardMib.toFixed(0)} + KV ${m.kvMib.toFixed(1)} + ${overheadMib.toFixed(0)} MiB (limit ${LOAD_OVERHEAD_LIMIT_MIB})`,
    );
  },
);
