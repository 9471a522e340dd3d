import { TrainingDivergedError } from '@swarmbee/core';
import { PIPELINE_SCHEDULES, type StepMicroBatch, TrainingPipeline } from '@swarmbee/engine';
import { initLoraAdapter } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { pipelineSchedule } from '../src/train/pipeline-schedule.js';

/**
 * Runs a schedule as the pipeline does — each stage in order, an op waiting for its
 * input from the neighbouring stage — and returns each stage's most micro-batches held.
 */
function simulate(schedule: ReturnType<typeof pipelineSchedule>): number[] {
  const stages = schedule.length;
  const next = schedule.map(() => 0);
  const forwardDone = schedule.map(() => new Set<number>());
  const backwardDone = schedule.map(() => new Set<number>());
  const held = schedule.map(() => 0);
  const peak = schedule.map(() => 0);
  for (let progress = true; progress; ) {
    progress = false;
    for (let s = 0; s < stages; s++) {
      const op = schedule[s]![next[s]!];
      if (!op) continue;
      const ready =
        op.pass === 'forward'
          ? s === 0 || forwardDone[s - 1]!.has(op.microBatch)
          : forwardDone[s]!.has(op.microBatch) &&
            (s === stages - 1 || backwardDone[s + 1]!.has(op.microBatch));
      if (!ready) continue;
      (op.pass === 'forward' ? forwardDone : backwardDone)[s]!.add(op.microBatch);
      held[s]! += op.pass === 'forward' ? 1 : -1;
      peak[s] = Math.max(peak[s]!, held[s]!);
      next[s]!++;
      progress = true;
    }
  }
  if (next.some((n, s) => n !== schedule[s]!.length)) throw new Error('the schedule deadlocks');
  return peak;
}

t.test(
  '1F1B and GPipe: every pass once, no deadlock, 1F1B holds at most K − s micro-batches',
  async (t) => {
    for (const kind of PIPELINE_SCHEDULES)
      for (let stages = 1; stages <= 4; stages++)
        for (let micro = 1; micro <= 6; micro++) {
          const schedule = pipelineSchedule(kind, stages, micro);
          for (const ops of schedule) {
            const key = (o: { pass: string; microBatch: number }) => `${o.pass}${o.microBatch}`;
            t.equal(
              new Set(ops.map(key)).size,
              2 * micro,
              `${kind} ${stages}x${micro}: each pass once`,
            );
          }
          const peak = simulate(schedule);
          const expected = peak.map((_, s) =>
            kind === 'gpipe' ? micro : Math.min(stages - s, micro),
          );
          t.same(
            peak,
            expected,
            `${kind}, ${stages} stages, ${micro} micro-batches: peak held ${peak}`,
          );
        }
  },
);

function batches(count: number): StepMicroBatch[] {
  return Array.from({ length: count }, (_, m) => {
    const lengths = Int32Array.of(7, 5);
    const width = 7;
    const tokens = BigInt64Array.from({ length: 14 }, (_, i) =>
      BigInt(3 + ((i * 37 + m * 11) % 500)),
    );
    const targets = BigInt64Array.from({ length: 14 }, (_, i) =>
      i % 7 < lengths[Math.floor(i / 7)]! ? BigInt(3 + ((i * 53 + m) % 500)) : -100n,
    );
    return { lengths, width, tokens, targets };
  });
}

t.test(
  'stages hold what the schedule says; stashing holds more bytes than recomputing',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const adapter = initLoraAdapter(
      { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], layers: [0, 1, 2, 3, 4] },
      dir.manifest,
      1,
    );
    const peaks: Record<string, { inFlight: number[]; bytes: number[]; loss: number }> = {};
    for (const schedule of PIPELINE_SCHEDULES)
      for (const activations of ['recompute', 'stash'] as const) {
        const pipeline = await TrainingPipeline.local(dir, adapter, {
          stages: 3,
          schedule,
          activations,
          stage: { intraOpThreads: 1 },
        });
        try {
          const { loss } = await pipeline.step(batches(4), { learningRate: 1e-3, maxGradNorm: 1 });
          const stats = await Promise.all(pipeline.stages.map((s) => s.stats()));
          peaks[`${schedule}/${activations}`] = {
            inFlight: stats.map((s) => s.peakInFlight),
            bytes: stats.map((s) => s.peakStashBytes),
            loss,
          };
        } finally {
          await pipeline.close();
        }
      }
    t.same(peaks['1f1b/recompute']!.inFlight, [3, 2, 1]);
    t.same(peaks['gpipe/recompute']!.inFlight, [4, 4, 4]);
    for (const s of [0, 1, 2])
      t.ok(
        peaks['1f1b/stash']!.bytes[s]! > 4 * peaks['1f1b/recompute']!.bytes[s]!,
        `stage ${s}: stash ${peaks['1f1b/stash']!.bytes[s]} B, recompute ${peaks['1f1b/recompute']!.bytes[s]} B`,
      );
    const losses = Object.values(peaks).map((p) => p.loss);
    t.ok(
      Math.max(...losses) - Math.min(...losses) < 1e-6 * losses[0]!,
      `one loss for every schedule and policy: ${losses}`,
    );
  },
);

t.test('BAD INPUT - an update that would overflow on one stage is applied on none', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const adapter = initLoraAdapter(
    { rank: 2, alpha: 4, targets: ['v_proj'], layers: [0, 4] },
    dir.manifest,
    1,
  );
  adapter.tensors.get('layers.4.v_proj.lora_A')!.fill(1e31);
  const pipeline = await TrainingPipeline.local(dir, adapter, {
    stages: 2,
    stage: { optimizer: { weightDecay: 1 } },
  });
  try {
    const before = await pipeline.state();
    const result = await pipeline.accumulate(batches(2));
    await t.rejects(pipeline.update(result.gradNorm, { learningRate: 1e9, maxGradNorm: 0 }), {
      code: TrainingDivergedError.code,
      message: /layers \[3, 5\): the update would make layers.4.v_proj.lora_A non-finite/,
    });
    t.same(await pipeline.state(), before, 'both stages keep their values, moments and step');
    const again = await pipeline.accumulate(batches(2));
    await pipeline.update(again.gradNorm, { learningRate: 1e-3, maxGradNorm: 1 });
    t.same(
      (await pipeline.state()).map((s) => s.step),
      [1, 1],
      'and train on afterwards',
    );
  } finally {
    await pipeline.close();
  }
});
