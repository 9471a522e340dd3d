/** Device emulation: a decorator around a real stage engine, never inside it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '@swarmbee/core';
import {
  DeviceEmulation,
  paceSegments,
  type StageBatch,
  type StageEngine,
  type StageOutput,
} from '@swarmbee/engine';
import { buildShard, SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { OrtStage } from '../src/ort-stage.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const PROMPT_TOKENS = 48;
/** Half a timer tick: what one pass's wait may be short of its share by rounding. */
const TICK_MS = 0.5;
/** How far a running thread's CPU time in /proc schedstat may lag: a scheduler tick at 250 Hz, ms. */
const SCHEDSTAT_LAG_MS = 4;
/** What a few late timers may add to a run's idle time on a loaded machine, ms. */
const LATE_WAITS_MS = 10;

/**
 * The real engine, recording when each forward ran inside it and what it took: `engineMs`,
 * the engine's own figure, and `aloneMs`, the pass as the emulation counts it — its wall time,
 * or the process's CPU time when less (other work on the machine stretches the wall time).
 */
class Recorded implements StageEngine {
  readonly runs: { start: number; end: number; engineMs: number; aloneMs: number }[] = [];
  constructor(readonly inner: StageEngine) {}
  get info() {
    return this.inner.info;
  }
  async forward(batch: StageBatch): Promise<StageOutput> {
    const cpuBefore = process.cpuUsage();
    const start = performance.now();
    const out = await this.inner.forward(batch);
    const end = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    this.runs.push({
      start,
      end,
      engineMs: out.timing.forwardMs + out.timing.kvMs,
      aloneMs: Math.min(end - start, (cpu.user + cpu.system) / 1000),
    });
    return out;
  }
  release(seqIds: string[]) {
    return this.inner.release(seqIds);
  }
  stats() {
    return this.inner.stats();
  }
  close() {
    return this.inner.close();
  }
}

async function stages(t: Test) {
  const dir = await synthesizeModel({
    config: { ...SYNTH_PRESETS.tiny.config, maxSeqLen: 128 },
    seed: 3,
    out: join(t.testdir(), 'm'),
  });
  const shard = buildShard(dir, { start: 0, end: 5 });
  const plain = await OrtStage.create(shard, { intraOpThreads: 1 });
  const recorded = new Recorded(await OrtStage.create(shard, { intraOpThreads: 1 }));
  t.teardown(async () => {
    await plain.close();
    await recorded.close();
  });
  return { plain, recorded };
}

const prompt = (seqId: string): StageBatch => ({
  rows: [{ seqId, start: 0, count: PROMPT_TOKENS, sampling: GREEDY }],
  tokens: BigInt64Array.from({ length: PROMPT_TOKENS }, (_, i) => BigInt((i * 7) % 500)),
});

t.test('an emulated stage gives the same tokens, taking 1/speed of the engine time', async (t) => {
  const { plain, recorded } = await stages(t);
  const emulation = new DeviceEmulation(0.25);
  const slowed = emulation.wrap(recorded);
  const expected = await plain.forward(prompt('a'));
  const started = performance.now();
  const out = await slowed.forward(prompt('a'));
  const wallMs = performance.now() - started;
  t.same(
    out.kind === 'tokens' && [...out.tokens],
    expected.kind === 'tokens' && [...expected.tokens],
  );
  const { aloneMs } = recorded.runs[0]!;
  // Timers wait whole milliseconds: one pass is emulated within half a tick.
  t.ok(
    wallMs >= aloneMs / 0.25 - TICK_MS,
    `wall ${wallMs.toFixed(1)} ms ≥ 4 × the pass ${aloneMs.toFixed(1)} ms`,
  );
  const reported = out.timing.forwardMs + out.timing.kvMs;
  t.ok(
    reported >= aloneMs / 0.25 - TICK_MS && reported <= wallMs + 1,
    `reported forward time ${reported.toFixed(1)} ms is the emulated device's`,
  );
  const stats = await slowed.stats();
  t.ok(stats.forwardMsTotal >= out.timing.forwardMs - 0.01, 'stats count the emulated time');
});

t.test(
  'forwards are serialized: the next starts once the previous emulated pass is over',
  async (t) => {
    const { recorded } = await stages(t);
    const emulation = new DeviceEmulation(0.2);
    const slowed = emulation.wrap(recorded);
    const ends: number[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((id) =>
        slowed.forward(prompt(id)).then(() => ends.push(performance.now())),
      ),
    );
    t.equal(recorded.runs.length, 3);
    for (let i = 1; i < 3; i++) {
      const previous = recorded.runs[i - 1]!;
      const idleMs = previous.aloneMs / 0.2 - (previous.end - previous.start);
      t.ok(
        recorded.runs[i]!.start >= previous.end + idleMs - 1 - TICK_MS,
        `forward ${i} started ${(recorded.runs[i]!.start - previous.end).toFixed(1)} ms after the previous engine run (idle ${idleMs.toFixed(1)} ms)`,
      );
    }
  },
);

t.test('the speed can change mid-run (throttling) and is checked', async (t) => {
  const { recorded } = await stages(t);
  const emulation = new DeviceEmulation(1);
  const speeds: number[] = [];
  emulation.onChange((speed) => speeds.push(speed));
  const slowed = emulation.wrap(recorded);
  const time = async (id: string) => {
    const started = performance.now();
    await slowed.forward(prompt(id));
    return performance.now() - started;
  };
  await time('a');
  // At speed 1 it waits not at all: the stats count no idle time beyond the engine's.
  const idleAtFullSpeed =
    (await slowed.stats()).forwardMsTotal - (await recorded.stats()).forwardMsTotal;
  emulation.setSpeed(0.1);
  const throttled = await time('b');
  const { aloneMs } = recorded.runs[1]!;
  t.equal(idleAtFullSpeed, 0, 'at speed 1 no idle');
  t.ok(
    throttled >= aloneMs / 0.1 - TICK_MS,
    `at 0.1: ${throttled.toFixed(1)} ms ≥ 10 × ${aloneMs.toFixed(1)} ms`,
  );
  t.same(speeds, [0.1]);
  t.equal(emulation.label, 'speed0.1');
  for (const bad of [0, -1, 1.5, Number.NaN])
    t.throws(() => emulation.setSpeed(bad), { code: InvalidArgumentError.code }, `refuses ${bad}`);
  t.throws(() => new DeviceEmulation(2), { code: InvalidArgumentError.code });
  t.equal(emulation.speed, 0.1, 'a refused speed leaves it unchanged');
});

for (const basis of ['wall', 'cpu'] as const)
  t.test(
    `idle time over a run is exact, not every pass rounded up to a whole tick (${basis})`,
    async (t) => {
      const { recorded } = await stages(t);
      // Nearly this machine's speed: each decode step of a 5-layer tiny model owes a few
      // hundredths of a millisecond of idle. Rounding every wait up to a whole tick (as timers
      // count) would idle at least a millisecond a pass, tens of times what is owed.
      const speed = 0.9;
      const slowed = new DeviceEmulation(speed, basis).wrap(recorded);
      await slowed.forward(prompt('a'));
      const STEPS = 40;
      for (let i = 0; i < STEPS; i++)
        await slowed.forward({
          rows: [{ seqId: 'a', start: PROMPT_TOKENS + i, count: 1, sampling: GREEDY }],
          tokens: BigInt64Array.of(BigInt(i % 500)),
        });
      const owedMs = recorded.runs.reduce((sum, r) => {
        const wallMs = r.end - r.start;
        return sum + Math.max(0, (basis === 'cpu' ? r.aloneMs : wallMs) / speed - wallMs);
      }, 0);
      const idleMs =
        (await slowed.stats()).forwardMsTotal - (await recorded.stats()).forwardMsTotal;
      t.ok(
        idleMs >= owedMs - 1 - TICK_MS && idleMs <= owedMs + LATE_WAITS_MS,
        `idle ${idleMs.toFixed(1)} ms over ${STEPS + 1} passes owing ${owedMs.toFixed(1)} ms`,
      );
    },
  );

/** This thread's CPU time, ms (Linux), as the pacer's cpu basis reads it. */
function threadCpuMs(): number {
  return Number.parseInt(readFileSync('/proc/thread-self/schedstat', 'utf8'), 10) / 1e6;
}

/** Spins this thread for `ms` of wall time (CPU work, as a segment run is). */
async function spin(ms: number): Promise<number> {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n;
}

t.test(
  'a tensor-parallel member paced segment by segment: CPU work stretches, waiting does not',
  async (t) => {
    const pace = paceSegments({ speed: 0.25, basis: 'cpu' });
    let begun = performance.now();
    let cpuMs = 0;
    await pace(async () => {
      const cpuBefore = threadCpuMs();
      await spin(20);
      cpuMs = threadCpuMs() - cpuBefore;
    });
    const computed = performance.now() - begun;
    // The spin's CPU on a device a quarter as fast takes 4 × as long; the machine's other work
    // may take the spin's core from it (its wall time then exceeds its CPU time), which a
    // device of its own would not see, so the share is of CPU time. A running thread's
    // schedstat is brought up to date only at the scheduler's ticks, so either reading may lag
    // by one (SCHEDSTAT_LAG_MS), which the pace multiplies by 4.
    t.ok(
      computed >= 4 * (cpuMs - SCHEDSTAT_LAG_MS) - TICK_MS,
      `${cpuMs.toFixed(1)} ms of CPU at speed 0.25 took ${computed.toFixed(1)} ms`,
    );
    begun = performance.now();
    await pace(() => new Promise((resolve) => setTimeout(resolve, 20)));
    const waited = performance.now() - begun;
    // A run that waits without computing (a sum from the group) is not slower on a slower device.
    t.ok(waited < 60, `a 20 ms wait at speed 0.25 took ${waited.toFixed(1)} ms`);
    const wallPace = paceSegments({ speed: 0.5, basis: 'wall' });
    begun = performance.now();
    let runMs = 0;
    await wallPace(async () => {
      const runBegun = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 20));
      runMs = performance.now() - runBegun;
    });
    const wall = performance.now() - begun;
    t.ok(
      wall >= 2 * runMs - TICK_MS,
      `with the wall basis a ${runMs.toFixed(1)} ms run at speed 0.5 took ${wall.toFixed(1)} ms`,
    );
    t.throws(() => paceSegments({ speed: 0, basis: 'wall' }), InvalidArgumentError);
  },
);
