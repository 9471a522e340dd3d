/**
 * Lifecycle events of a cluster in this process (a coordinator and two worker daemons
 * on loopback, stories260K): each daemon's states arrive on its diagnostics channel in
 * the order its state machine allows, the coordinator reports workers joining, the
 * deployment and its stages; and a worker lost after a stream's first token (no sleep)
 * is seen as lost, re-planned around, and the stream replayed, with the same ids as an
 * uninterrupted run.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import {
  COORDINATOR_EVENTS,
  Coordinator,
  type CoordinatorEventMap,
  type CoordinatorEventName,
} from '@swarmbee/coordinator';
import {
  WORKER_EVENTS,
  WorkerDaemon,
  type WorkerEventMap,
  type WorkerEventName,
} from '@swarmbee/worker';
import t from 'tap';
import { stories260kDir } from './helpers/stories260k.js';

type EventMap = CoordinatorEventMap & WorkerEventMap;
type Seen = { [N in keyof EventMap]?: EventMap[N][] };

/** Collects every event of these channels, in order, until `stop()`. */
function collect(names: (CoordinatorEventName | WorkerEventName)[]) {
  const seen: Seen = {};
  const all: string[] = [];
  const handlers = names.map((name) => {
    const handler = (event: unknown) => {
      const list = (seen as Record<string, unknown[]>)[name] ?? [];
      list.push(event);
      (seen as Record<string, unknown[]>)[name] = list;
      all.push(name);
    };
    subscribe(name, handler);
    return () => unsubscribe(name, handler);
  });
  const stop = () => {
    for (const off of handlers) off();
  };
  return { seen, all, stop };
}

/** Resolves with the first event of `name` that `match` accepts, from now on. */
function next<N extends keyof EventMap>(
  name: N,
  match: (event: EventMap[N]) => boolean = () => true,
): Promise<EventMap[N]> {
  return new Promise((resolve) => {
    const handler = (event: unknown) => {
      if (!match(event as EventMap[N])) return;
      unsubscribe(name, handler);
      resolve(event as EventMap[N]);
    };
    subscribe(name, handler);
  });
}

t.test(
  'a cluster in process: states, joins, deployment, loss, re-plan and replay as events',
  async (t) => {
    const root = t.testdir();
    const dir = await stories260kDir(t, root);
    if (!dir) return;
    const events = collect([...Object.values(COORDINATOR_EVENTS), ...Object.values(WORKER_EVENTS)]);
    t.teardown(() => events.stop());
    const token = `lifecycle-${process.pid}`;
    const coordinator = new Coordinator({
      model: dir,
      token,
      listenPort: 0,
      apiPort: 0,
      minWorkers: 2,
      cacheDir: join(root, 'c'),
      planning: { planner: 'even' },
      deploy: { stage: { intraOpThreads: 1 } },
    });
    const daemons: WorkerDaemon[] = [];
    t.teardown(async () => {
      await coordinator.stop();
      await Promise.all(daemons.map((w) => w.stop()));
    });
    const listening = next(COORDINATOR_EVENTS.listening);
    await coordinator.start();
    const { workersUrl } = await listening;
    t.equal(workersUrl, coordinator.workersUrl, 'listening names the workers URL');
    const ready = next(COORDINATOR_EVENTS.state, (e) => e.to === 'ready');
    for (const i of [0, 1])
      daemons.push(
        new WorkerDaemon({
          coordinatorUrl: workersUrl,
          token,
          name: `worker-${i}`,
          cacheDir: join(root, `w-${i}`),
          threads: 1,
        }),
      );
    await Promise.all(daemons.map((w) => w.start()));
    await ready;

    const joined = (events.seen[COORDINATOR_EVENTS.workerJoined] ?? []).map((e) => e.worker).sort();
    t.same(joined, ['worker-0', 'worker-1'], 'both workers joined');
    const deployed = events.seen[COORDINATOR_EVENTS.deployed]?.[0];
    t.same(
      deployed?.stages.map((s) => s.worker),
      ['worker-0', 'worker-1'],
      'the deployment names its stages',
    );
    const stageReady = events.seen[WORKER_EVENTS.stageReady] ?? [];
    t.same(stageReady.map((e) => e.stage).sort(), [0, 1], 'each stage reported ready');
    t.same(
      (events.seen[WORKER_EVENTS.state] ?? [])
        .filter((e) => e.worker === 'worker-0')
        .map((e) => e.to),
      ['joining', 'idle', 'loading', 'ready'],
      'worker-0 went through its states in order',
    );
    t.same(
      (events.seen[COORDINATOR_EVENTS.state] ?? []).map((e) => `${e.from}->${e.to}`),
      ['waiting->deploying', 'deploying->ready'],
      'the coordinator went through its states in order',
    );

    const service = coordinator.service;
    const request = {
      prompt: 'Once upon a time',
      maxTokens: 80,
      sampling: { temperature: 0, topK: 0, topP: 1 },
    };
    const uninterrupted = await service.complete(request);

    // Lose worker-1 as soon as the stream has its first token: no sleep decides when.
    const lost = next(COORDINATOR_EVENTS.workerLost);
    const replanning = next(COORDINATOR_EVENTS.replanning);
    const replayed = next(COORDINATOR_EVENTS.replayed);
    let stopping: Promise<void> | undefined;
    const interrupted = await service.complete(request, {
      onToken: () => {
        stopping ??= daemons[1]!.stop();
      },
    });
    await stopping;
    t.same(interrupted.tokenIds, uninterrupted.tokenIds, 'the replayed stream has the same ids');
    t.same(
      await lost,
      { worker: 'worker-1', ranStage: true },
      'worker-1 lost while it ran a stage',
    );
    t.match((await replanning).reason, /worker-1/, 'the re-plan says why');
    const replay = await replayed;
    t.same(replay.workers, ['worker-0'], 'the new plan runs on the worker left');
    t.equal(replay.replayed, 1, 'the live stream was replayed');
    t.same(
      (events.seen[WORKER_EVENTS.state] ?? [])
        .filter((e) => e.worker === 'worker-1')
        .map((e) => e.to)
        .slice(-2),
      ['draining', 'stopped'],
      'worker-1 drained and stopped',
    );
    t.same(
      (events.seen[COORDINATOR_EVENTS.state] ?? []).map((e) => e.to).slice(-2),
      ['recovering', 'ready'],
      'the coordinator recovered',
    );
  },
);
