/**
 * What a worker's tensor-parallel member pays to sum from its stage thread through the
 * group member on the process's main thread: µs per sum added by the thread hop, for
 * partials of a few sizes. The main thread's member is an identity (a group of one), so
 * only the hop is timed:
 *
 * - `port`: `PortAllReduce` → `serveAllReduce` (what the worker runs: a MessagePort round
 *   trip, the partial moved both ways);
 * - `atomics`: the same hop over shared memory — the thread copies the partial into a
 *   SharedArrayBuffer and parks in `Atomics.wait`; the main thread wakes by
 *   `Atomics.waitAsync`, copies it out, "sums", copies back and notifies;
 * - `direct`: the identity awaited in the thread itself (the floor).
 *
 * Rounds alternate the three; prints the median per-sum µs of each and the hop's added µs.
 *
 *     node --conditions=swarmbee:source --import tsx scripts/tp-proxy-cost.ts [--sums 2000] [--rounds 5]
 */

import { parseArgs } from 'node:util';
import { MessageChannel, parentPort, Worker, workerData } from 'node:worker_threads';
import type { AllReduce } from '@swarmbee/core';
import { PortAllReduce, serveAllReduce } from '@swarmbee/engine';

const SIZES = [64, 768, 768 * 16];
/** `Atomics.waitAsync` (Node 16+; typed only in ES2024's lib). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync: (
      a: Int32Array,
      i: number,
      v: number,
      ms: number,
    ) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;
const identity: AllReduce = { rank: 0, size: 1, sum: async (p) => p, close: async () => {} };

type Mode = 'port' | 'atomics' | 'direct';
interface Job {
  mode: Mode;
  size: number;
  sums: number;
  port?: import('node:worker_threads').MessagePort;
  shared?: SharedArrayBuffer;
}

if (parentPort && workerData?.job) {
  const job = workerData.job as Job;
  const partial = () => new Float32Array(job.size).fill(1);
  let sum: (p: Float32Array) => Promise<Float32Array>;
  if (job.mode === 'port') {
    const member = new PortAllReduce({ port: job.port!, rank: 0, size: 1 });
    sum = (p) => member.sum(p);
  } else if (job.mode === 'atomics') {
    const flag = new Int32Array(job.shared!, 0, 1);
    const slot = new Float32Array(job.shared!, 4, job.size);
    sum = async (p) => {
      slot.set(p);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      while (Atomics.load(flag, 0) !== 2) Atomics.wait(flag, 0, 1, 50);
      Atomics.store(flag, 0, 0);
      p.set(slot);
      return p;
    };
  } else sum = (p) => identity.sum(p);
  for (let i = 0; i < 100; i++) await sum(partial());
  const start = performance.now();
  for (let i = 0; i < job.sums; i++) await sum(partial());
  parentPort.postMessage((performance.now() - start) / job.sums);
} else {
  const { values } = parseArgs({
    options: {
      sums: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const sums = Number(values.sums);
  const rounds = Number(values.rounds);
  const run = async (mode: Mode, size: number): Promise<number> => {
    const job: Job = { mode, size, sums };
    const transfer: import('node:worker_threads').MessagePort[] = [];
    let stop = () => {};
    if (mode === 'port') {
      const { port1, port2 } = new MessageChannel();
      serveAllReduce(port1, identity);
      job.port = port2;
      transfer.push(port2);
      stop = () => port1.close();
    } else if (mode === 'atomics') {
      job.shared = new SharedArrayBuffer(4 + size * 4);
      const flag = new Int32Array(job.shared, 0, 1);
      const slot = new Float32Array(job.shared, 4, size);
      let running = true;
      stop = () => {
        running = false;
      };
      void (async () => {
        while (running) {
          const wait = waitAsync(flag, 0, 0, 50);
          if (wait.async) await wait.value;
          if (Atomics.load(flag, 0) !== 1) continue;
          const part = slot.slice();
          const total = await identity.sum(part);
          slot.set(total);
          Atomics.store(flag, 0, 2);
          Atomics.notify(flag, 0);
        }
      })();
    }
    const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(bootstrap, {
      eval: true,
      workerData: { job },
      transferList: transfer,
    });
    const perSumMs = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    stop();
    await worker.terminate();
    return perSumMs * 1000;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`sums per run ${sums}, rounds ${rounds}; median µs per sum`);
  console.log('floats\tdirect\tport\tatomics\tport added\tatomics added');
  for (const size of SIZES) {
    const times: Record<Mode, number[]> = { direct: [], port: [], atomics: [] };
    for (let r = 0; r < rounds; r++)
      for (const mode of ['direct', 'port', 'atomics'] as const)
        times[mode].push(await run(mode, size));
    const [d, p, a] = [median(times.direct), median(times.port), median(times.atomics)];
    console.log(
      `${size}\t${d.toFixed(1)}\t${p.toFixed(1)}\t${a.toFixed(1)}\t${(p - d).toFixed(1)}\t\t${(a - d).toFixed(1)}`,
    );
  }
}
