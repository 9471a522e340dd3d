import { createStageEngine, ThreadedStage } from '@swarmbee/engine';
import { buildShard, cachedSynthModel } from '@swarmbee/model';

const dir = await cachedSynthModel('small', 42);
const threaded = process.env.THREADED === '1';
const create = threaded ? ThreadedStage.create : createStageEngine;
const stage = await create(buildShard(dir, { start: 0, end: 2 }), { intraOpThreads: 1 });
let seed = 7;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
type Seq = { id: string; prompt: number; out: number; pos: number };
let n = 0;
let done = 0;
const fresh = (): Seq => ({
  id: `s${n++}`,
  prompt: 1 + Math.floor(rnd() * 64),
  out: 8 + Math.floor(rnd() * 121),
  pos: 0,
});
const active: Seq[] = Array.from({ length: 8 }, fresh);
const total = Number(process.env.N ?? 400);
const rss = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const line: number[] = [];
while (done < total) {
  const rows = active.map((s) => ({
    seqId: s.id,
    start: s.pos,
    count: s.pos === 0 ? Math.min(s.prompt, 16) : 1,
  }));
  const width = Math.max(...rows.map((r) => r.count));
  const tokens = new BigInt64Array(rows.length * width).fill(5n);
  await stage.forward({ rows, tokens });
  const finished: string[] = [];
  for (const [i, s] of active.entries()) {
    s.pos += rows[i]!.count;
    if (s.pos === 0 + rows[i]!.count && s.pos < s.prompt) {
      /* prefill continues */
    }
    if (s.pos >= s.prompt + s.out) {
      finished.push(s.id);
      active[i] = fresh();
      done++;
      if (done % 25 === 0) line.push(rss());
    }
  }
  if (finished.length) await stage.release(finished);
}
console.log(threaded ? 'threaded' : 'inline', process.env.ORT_NO_ARENA ?? '', line.join(' '));
await stage.close();
