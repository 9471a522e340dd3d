/**
 * Run by load-memory.test.ts in a fresh process: loads a written shard the way a worker
 * does (`openShard`, then a `ThreadedStage`), serves a prompt and some decode steps, and
 * prints its memory as JSON: RSS before loading, peak RSS (VmHWM), the shard's bytes on
 * disk and the KV bytes the cache held.
 */
import { readFileSync } from 'node:fs';
import { openShard } from '@swarmbee/model';
import { ThreadedStage } from '../src/threaded-stage.js';

const statusMib = (key: string): number => {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}:`));
  return Number(/(\d+) kB/.exec(line ?? '')?.[1]) / 1024;
};

const [shardDir, promptArg, stepsArg] = process.argv.slice(2);
const promptTokens = Number(promptArg);
const steps = Number(stepsArg);
const baselineMib = statusMib('VmRSS');
const { manifest, graph } = await openShard(shardDir!);
const loadStart = performance.now();
const stage = await ThreadedStage.create(graph, { intraOpThreads: 1 });
const loadMs = performance.now() - loadStart;
const loadedMib = statusMib('VmRSS');
const sampling = { temperature: 0, topK: 0, topP: 1, seed: 1 };
let output = await stage.forward({
  rows: [{ seqId: 's', start: 0, count: promptTokens, sampling }],
  tokens: BigInt64Array.from({ length: promptTokens }, (_, i) => BigInt((i * 7) % 300)),
});
for (let step = 0; step < steps; step++) {
  const token = output.kind === 'tokens' ? output.tokens[0]! : 0;
  output = await stage.forward({
    rows: [{ seqId: 's', start: promptTokens + step, count: 1, sampling }],
    tokens: BigInt64Array.of(BigInt(token)),
  });
}
const { kvBytes } = await stage.stats();
await stage.close();
const shardBytes = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
console.log(
  JSON.stringify({
    baselineMib,
    loadedMib,
    peakMib: statusMib('VmHWM'),
    shardMib: shardBytes / 2 ** 20,
    kvMib: kvBytes / 2 ** 20,
    loadMs,
  }),
);
