/**
 * The scheduler on its own, over real in-process pipelines of stories260K (2 stages):
 * a pipeline replaced mid-generation gets every live sequence replayed from position 0
 * and the greedy ids stay those of an uninterrupted run; an aborted sequence fails with
 * ABORTED and its cache is released once its last batch has landed; every finished
 * sequence's KV cache is released on every stage; and sequences beyond a stage's
 * sequence limit wait and start in arrival order.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError } from '@swarmbee/core';
import {
  type BatchSentEvent,
  type BatchTransport,
  ENGINE_EVENTS,
  LocalPipeline,
  pipelineTransport,
  Scheduler,
  type SequenceRequest,
} from '@swarmbee/engine';
import { importLlama2c, type ModelDir } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const PROMPTS = [
  [1, 403, 407, 261, 378],
  [1, 306, 301],
  [1, 365, 354, 322, 435],
];

function request(promptIds: number[], maxTokens: number, extra: Partial<SequenceRequest> = {}) {
  return { promptIds, maxTokens, sampling: GREEDY, stopIds: [], ...extra };
}

/** The pipeline's transport, with every release it sends written down. */
function recording(pipeline: LocalPipeline): { transport: BatchTransport; released: string[] } {
  const inner = pipelineTransport(pipeline);
  const released: string[] = [];
  return {
    released,
    transport: {
      run: (batch) => inner.run(batch),
      release: (seqIds) => {
        released.push(...seqIds);
        inner.release(seqIds);
      },
    },
  };
}

/** Sequences each stage holds a KV cache for now (after the work queued there). */
async function cached(pipeline: LocalPipeline): Promise<number[]> {
  await pipeline.release([]);
  return Promise.all(pipeline.stages.map(async (s) => (await s.stats()).sequences));
}

let dir: ModelDir;
t.before(async () => {
  if (!existsSync(STORIES260K.checkpoint)) return;
  dir = await importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out: join(t.testdir(), 'm'),
  });
});

t.test('a replaced pipeline: live sequences replay from 0 and keep their greedy ids', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const first = await LocalPipeline.create(dir, { stages: 2 });
  const second = await LocalPipeline.create(dir, { stages: 2 });
  t.teardown(() => Promise.all([first.close(), second.close()]));
  const reference = new Scheduler(pipelineTransport(second));
  const expected = await Promise.all(
    PROMPTS.map(async (p) => (await reference.generate(request(p, 40))).ids),
  );

  const scheduler = new Scheduler(pipelineTransport(first), { maxInFlight: 2 });
  const starts: number[] = [];
  const onBatch = (message: unknown) => {
    for (const row of (message as BatchSentEvent).rows) starts.push(row.start);
  };
  let tokens = 0;
  let moved: (() => void) | undefined;
  const movedOnce = new Promise<void>((resolve) => {
    moved = resolve;
  });
  const results = PROMPTS.map((p) =>
    scheduler.generate(
      request(p, 40, {
        onToken: () => {
          // After the 10th token of any sequence the pipeline "breaks" (a fault arrives
          // on its own turn of the event loop, as from a socket) and is replaced.
          if (++tokens === 10) {
            setImmediate(() => {
              scheduler.detach();
              subscribe(ENGINE_EVENTS.batchSent, onBatch);
              scheduler.attach(pipelineTransport(second), { maxInFlight: 2 });
              moved?.();
            });
          }
          return undefined;
        },
      }),
    ),
  );
  const ids = (await Promise.all(results)).map((r) => r.ids);
  unsubscribe(ENGINE_EVENTS.batchSent, onBatch);
  await movedOnce;
  t.same(ids, expected, 'the same ids as an uninterrupted run');
  t.equal(scheduler.replays, PROMPTS.length, 'every live sequence was replayed once');
  t.equal(starts.filter((s) => s === 0).length, PROMPTS.length, 'each replay starts at position 0');
  t.same(await cached(second), [0, 0], 'the new pipeline holds no cache afterwards');
});

t.test(
  'an aborted sequence fails with ABORTED; its cache is released after its batch lands',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const pipeline = await LocalPipeline.create(dir, { stages: 2 });
    t.teardown(() => pipeline.close());
    const { transport, released } = recording(pipeline);
    const scheduler = new Scheduler(transport, { maxInFlight: 2 });
    const controller = new AbortController();
    let seen = 0;
    const aborted = scheduler.generate(
      request(PROMPTS[0]!, 200, {
        signal: controller.signal,
        onToken: () => {
          if (++seen === 5) controller.abort();
          return undefined;
        },
      }),
    );
    const other = scheduler.generate(request(PROMPTS[1]!, 30));
    await t.rejects(aborted, { code: AbortedError.code });
    t.equal(seen, 5, 'no token after the abort reached the caller');
    const done = await other;
    t.equal(done.ids.length, PROMPTS[1]!.length + 30, 'the other sequence ran to its end');
    t.equal(released.length, 2, 'both caches released, each once');
    t.equal(new Set(released).size, 2);
    t.same(await cached(pipeline), [0, 0], 'no stage keeps a cache');
    t.equal(scheduler.active, 0);
    t.equal(scheduler.inFlight, 0);
    await t.rejects(
      scheduler.generate(request(PROMPTS[2]!, 5, { signal: AbortSignal.abort() })),
      { name: 'AbortError' },
      'an already aborted signal refuses at once',
    );
  },
);

t.test('sequences beyond a stage sequence limit wait and start in arrival order', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const pipeline = await LocalPipeline.create(dir, { stages: 2, stage: { maxSequences: 1 } });
  t.teardown(() => pipeline.close());
  const { transport, released } = recording(pipeline);
  const scheduler = new Scheduler(undefined, { maxInFlight: 2 });
  scheduler.attach(transport, {
    limits: pipeline.info.stages.map((s, stage) => ({ stage, ...s.limits! })),
  });
  const firstRows: string[] = [];
  const onBatch = (message: unknown) => {
    for (const row of (message as BatchSentEvent).rows)
      if (!firstRows.includes(row.seqId)) firstRows.push(row.seqId);
  };
  subscribe(ENGINE_EVENTS.batchSent, onBatch);
  t.teardown(() => unsubscribe(ENGINE_EVENTS.batchSent, onBatch));
  const order: number[] = [];
  const runs = PROMPTS.map((p, i) =>
    scheduler.generate(request(p, 12)).then((r) => {
      order.push(i);
      return r;
    }),
  );
  t.equal(scheduler.active, 1, 'one sequence runs');
  t.equal(scheduler.waiting, 2, 'two wait for room');
  await Promise.all(runs);
  t.same(order, [0, 1, 2], 'they finished in arrival order');
  t.same(released, firstRows, 'each started after the one before it was released');
  t.equal(scheduler.waiting, 0);
  // One sequence at a time: every step carried one row, timed on this event loop.
  const cost = scheduler.stepCost;
  t.same(cost?.batchSizes, [1], 'its own step time is known for the one-row batches it ran');
  t.ok(
    cost && cost.stepMs[0]! > 0 && cost.stepMs[0]! < 50,
    `${cost?.stepMs[0]?.toFixed(3)} ms a step`,
  );
});
