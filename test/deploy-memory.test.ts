/**
 * Memory at deployment, with a coordinator and worker daemons in this process (stories260K
 * on loopback): every stage is deployed with the KV budget its plan gives it (the worker
 * checks shard + that budget against its memory, its engine admits against it, and the
 * coordinator's scheduler against what the engine reports); a worker that refuses its
 * stage with MEMORY_SHORT is planned around (here: left out of an even split; the DP plans
 * within the capacity it reported, or without it when it refused even the profile's shards)
 * and when no plan fits, the coordinator says which worker
 * and how many bytes instead of retrying the same plan.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import {
  COORDINATOR_EVENTS,
  Coordinator,
  type CoordinatorOptions,
  type DeployedEvent,
} from '@swarmbee/coordinator';
import type { ModelDir } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import { WorkerDaemon, type WorkerOptions } from '@swarmbee/worker';
import t, { type Test } from 'tap';
import { stories260kDir } from './helpers/stories260k.js';

/** A KV budget no machine's memory holds (100 TB): the worker that sets it refuses any stage. */
const HUGE_KV_BUDGET_BYTES = 100e12;
/** Longest wait for the first deployment to settle (ready or waiting), ms. */
const SETTLE_TIMEOUT_MS = 120_000;

/** Resolves with the first event of `name` that `match` accepts, from now on. */
function next<T>(name: string, match: (event: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const handler = (event: unknown) => {
      if (!match(event as T)) return;
      unsubscribe(name, handler);
      resolve(event as T);
    };
    subscribe(name, handler);
  });
}

/** Starts a coordinator and named workers; resolves once the first deployment settled. */
async function cluster(
  t: Test,
  options: Partial<CoordinatorOptions> & { model: ModelDir; root: string },
  workers: Record<string, Partial<WorkerOptions>>,
): Promise<{ coordinator: Coordinator; log: string[]; settled: 'ready' | 'waiting' }> {
  const token = `deploy-memory-${process.pid}`;
  const log: string[] = [];
  const coordinator = new Coordinator({
    token,
    listenPort: 0,
    apiPort: 0,
    minWorkers: Object.keys(workers).length,
    cacheDir: join(options.root, 'c'),
    log: (line) => log.push(line),
    ...options,
    deploy: { stage: { intraOpThreads: 1 }, ...options.deploy },
  });
  const daemons: WorkerDaemon[] = [];
  t.teardown(async () => {
    await coordinator.stop();
    await Promise.all(daemons.map((w) => w.stop()));
  });
  await coordinator.start();
  const settled = next<{ to: string }>(
    COORDINATOR_EVENTS.state,
    (e) => e.to === 'ready' || e.to === 'waiting',
  );
  for (const [name, extra] of Object.entries(workers))
    daemons.push(
      new WorkerDaemon({
        coordinatorUrl: coordinator.workersUrl,
        token,
        name,
        cacheDir: join(options.root, `w-${name}`),
        threads: 1,
        ...extra,
      }),
    );
  await Promise.all(daemons.map((w) => w.start()));
  // Bounded, and a failure says what the coordinator did meanwhile.
  let timer: NodeJS.Timeout | undefined;
  const state = await Promise.race([
    settled,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`no deployment settled in ${SETTLE_TIMEOUT_MS} ms; log:\n${log.join('\n')}`),
          ),
        SETTLE_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  return { coordinator, log, settled: state.to as 'ready' | 'waiting' };
}

/** The cluster completes a short greedy request. */
async function serves(t: Test, coordinator: Coordinator): Promise<void> {
  const result = await coordinator.service.complete({
    prompt: 'Once upon a time',
    maxTokens: 8,
    sampling: { temperature: 0, topK: 0, topP: 1 },
  });
  t.equal(result.completionTokens, 8, 'and it serves');
}

t.test("each stage is deployed with its plan's KV budget, and admits against it", async (t) => {
  const root = t.testdir();
  const model = await stories260kDir(t, root);
  if (!model) return;
  const deployed = next<DeployedEvent>(COORDINATOR_EVENTS.deployed);
  const { coordinator, settled } = await cluster(
    t,
    {
      model,
      root,
      planning: {
        planner: 'dp',
        objective: 'throughput',
        workload: { contextTokens: 64 },
        microBatchCandidates: [1],
      },
    },
    { a: {} },
  );
  t.equal(settled, 'ready');
  const plan = coordinator.plan as PlanResult;
  const { stages } = await deployed;
  const sequences = plan.microBatchSize * plan.microBatchesInFlight;
  // KV bytes per token of one layer (keys and values, fp32), as the manifest records them.
  const perToken = model.manifest.layers[0]!.kvBytesPerToken;
  for (const [i, stage] of stages.entries()) {
    const planned = plan.stages[i]!;
    t.equal(
      planned.kvBudgetBytes,
      (planned.layerEnd - planned.layerStart) * perToken * 64 * sequences,
      `stage ${i}: ${planned.layerEnd - planned.layerStart} layers × ${perToken} B × 64 tokens × ${sequences} sequences`,
    );
    t.equal(
      stage.limits?.kvBudgetBytes,
      planned.kvBudgetBytes,
      `stage ${i} on ${stage.worker} loaded with the planned budget, not the 2 GiB default`,
    );
  }
  // The shards serve the planned 64 tokens (--context): a request for more is refused before
  // it starts, so one request alone always fits its budget (a row of 64 positions).
  const perPosition = Math.max(...stages.map((s) => s.limits!.kvBytesPerPosition));
  const smallest = Math.min(...stages.map((s) => s.limits!.kvBudgetBytes));
  t.ok(smallest / perPosition < model.manifest.config.maxSeqLen, 'the budget is below a full row');
  await t.rejects(
    coordinator.service.complete({
      prompt: 'Once upon a time',
      maxTokens: model.manifest.config.maxSeqLen - 8,
      sampling: { temperature: 0, topK: 0, topP: 1 },
    }),
    { code: 'SWARMBEE_ERR_INVALID_ARGUMENT', message: /max_tokens: at most 64 on this server/ },
    'a request beyond the 64-token context the shards serve',
  );
  const ok = await coordinator.service.complete({
    prompt: 'Once upon a time',
    maxTokens: 16,
    sampling: { temperature: 0, topK: 0, topP: 1 },
  });
  t.equal(ok.completionTokens, 16, 'a request within the budget runs');
});

t.test(
  'a worker refusing its stage with MEMORY_SHORT is left out of the even split, not retried',
  async (t) => {
    const root = t.testdir();
    const model = await stories260kDir(t, root);
    if (!model) return;
    const { coordinator, log, settled } = await cluster(
      t,
      { model, root, planning: { planner: 'even' } },
      { a: { kvBudgetBytes: HUGE_KV_BUDGET_BYTES }, b: {} },
    );
    t.equal(settled, 'ready', 'the coordinator deployed after the refusal');
    t.ok(
      log.some((l) => /deployment attempt 1 failed: SWARMBEE_ERR_MEMORY_SHORT: worker a /.test(l)),
      'worker a refused its stage',
    );
    t.ok(
      log.some((l) => /worker a can hold at most 0 bytes of weights and KV cache/.test(l)),
      'with the capacity it reported',
    );
    t.same(
      coordinator.plan?.stages.map((s) => s.device),
      ['b'],
      'the whole model went to worker b',
    );
    await serves(t, coordinator);
  },
);

t.test(
  "a worker refusing even the profile's shards is planned around by the DP, not retried",
  async (t) => {
    const root = t.testdir();
    const model = await stories260kDir(t, root);
    if (!model) return;
    const { coordinator, log, settled } = await cluster(
      t,
      { model, root, planning: { planner: 'dp', objective: 'throughput' } },
      { a: { kvBudgetBytes: HUGE_KV_BUDGET_BYTES }, b: {} },
    );
    if (!t.equal(settled, 'ready', 'deployed on the worker that could be profiled'))
      t.comment(log.join('\n'));
    t.ok(
      log.some((l) => /^a refused the profile's shards for memory; planning without it$/.test(l)),
      'worker a refused while being profiled',
    );
    t.notOk(
      log.some((l) => /deployment attempt \d+ failed/.test(l)),
      'no deployment attempt failed on it',
    );
    t.same(
      coordinator.plan?.stages.map((s) => s.device),
      ['b'],
      'the whole model went to worker b',
    );
    t.same(
      (coordinator.describe().measured as { devices?: unknown[] } | undefined)?.devices?.length,
      1,
      'the profile holds b alone',
    );
    await serves(t, coordinator);
  },
);

t.test(
  'BAD INPUT - when no plan fits after a MEMORY_SHORT refusal, the error names the worker and the bytes',
  async (t) => {
    const root = t.testdir();
    const model = await stories260kDir(t, root);
    if (!model) return;
    const { coordinator, log, settled } = await cluster(
      t,
      { model, root, planning: { planner: 'even' } },
      { a: { kvBudgetBytes: HUGE_KV_BUDGET_BYTES } },
    );
    t.equal(settled, 'waiting', 'nothing deployed');
    t.equal(
      log.filter((l) => /deployment attempt \d+ failed: SWARMBEE_ERR_MEMORY_SHORT/.test(l)).length,
      1,
      'worker a was asked once, not again with the same plan',
    );
    const error = (() => {
      try {
        return coordinator.service && undefined;
      } catch (e) {
        return e as { code: string; message: string };
      }
    })();
    t.equal(error?.code, 'SWARMBEE_ERR_CLUSTER_UNAVAILABLE');
    t.match(
      error?.message,
      /SWARMBEE_ERR_PLAN_INFEASIBLE: every worker refused its stage for memory \(MEMORY_SHORT\): worker a needed \d+ bytes for its stage \(shard, KV budget and runtime\) and can hold at most 0 bytes/,
      'saying no plan fits, which worker, and the bytes',
    );
  },
);
