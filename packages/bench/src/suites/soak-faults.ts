/**
 * `npm run bench -- soak-faults`: the soak suite's fault variant. 1,000 requests of the
 * soak mix, 8 in flight, over a coordinator and three workers, all real processes; every
 * 100 requests one worker is hit — kill -9, SIGTERM, SIGSTOP past the heartbeat timeout,
 * in turn — and brought back (started again, or continued), while the load goes on.
 * Every request must come back whole with the tokens the same request got in a pass
 * without faults, and the processes that live through the run (the coordinator and the
 * two workers never hit) must keep a flat resident memory.
 */
import { join } from 'node:path';
import { cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { ProcessCluster } from '../chaos/process-cluster.js';
import { drive, faultLoop, type Pass, SOAK_CONCURRENCY } from '../chaos/soak-load.js';
import { type BenchCheck, check } from '../report/report.js';
import { lineChart } from '../report/svg.js';
import { resultHeader, type Suite } from '../suite.js';
import {
  RSS_GROWTH_LIMIT,
  requestMix,
  SAMPLE_EVERY,
  SOAK_FULL,
  SOAK_QUICK,
  WINDOW_REQUESTS,
} from './soak.js';

const WORKERS = 3;
const CONCURRENCY = SOAK_CONCURRENCY;
/** The worker that is hit; the others live through the run. */
const VICTIM = 2;
const HEARTBEAT_TIMEOUT_MS = 1500;
const FULL = { requests: 1000, faultEvery: 100 };
const QUICK = { requests: 200, faultEvery: 50 };
const MIB = 2 ** 20;

function windowMedian(samples: Pass['samples'], end: number): Map<string, number> {
  const window = samples.filter((s) => s.done > end - WINDOW_REQUESTS && s.done <= end);
  const names = new Set(window.flatMap((s) => [...s.rss.keys()]));
  return new Map(
    [...names].map((n) => [n, summarize(window.flatMap((s) => s.rss.get(n) ?? [])).median]),
  );
}

export const soakFaultsSuite: Suite = {
  name: 'soak-faults',
  describe: `the soak with faults: ${FULL.requests} requests, a worker killed, terminated or stopped and brought back every ${FULL.faultEvery}; all whole, memory of the long-lived processes flat`,
  async run(context) {
    const started = Date.now();
    const plan = context.quick ? QUICK : FULL;
    const shape = { ...(context.quick ? SOAK_QUICK : SOAK_FULL), requests: plan.requests };
    context.progress(`soak-faults: preparing the ${shape.preset} synthetic model`);
    const model = await cachedSynthModel(shape.preset, DEFAULT_SYNTH_SEED);
    const vocab = model.manifest.config.vocabSize;
    const requests = requestMix(plan.requests, shape, vocab, 3);
    const heartbeat = ['--heartbeat-timeout-ms', String(HEARTBEAT_TIMEOUT_MS)];
    context.progress(`soak-faults: starting a coordinator and ${WORKERS} workers`);
    const cluster = await ProcessCluster.start({
      cliBin: context.cliBin,
      model: model.path,
      workers: WORKERS,
      root: join(cacheRoot(), 'bench', 'soak-faults', String(started)),
      coordinatorArgs: ['--planner', 'even', ...heartbeat],
      workerArgs: heartbeat,
    });
    let reference: Omit<Pass, 'faults'>;
    let faulted: Pass;
    try {
      const longLived = () => [cluster.coordinator, cluster.workers[0]!, cluster.workers[1]!];
      const progress = (phase: string) => (done: number) => {
        if (done % 50 === 0) context.progress(`soak-faults: ${phase} ${done}/${plan.requests}`);
      };
      reference = await drive(cluster, requests, longLived, progress('without faults'));
      const loop = faultLoop(cluster, VICTIM, WORKERS, plan.faultEvery, plan.requests);
      const [withFaults] = await Promise.all([
        drive(cluster, requests, longLived, (done) => {
          loop.onDone(done);
          progress('with faults')(done);
        }),
        loop.run(),
      ]);
      faulted = { ...withFaults, faults: loop.faults };
    } finally {
      await cluster.stop();
    }
    const unexpected = cluster.unexpectedExits();
    const processFaults = cluster.processFaults();
    const failures: string[] = [];
    let whole = 0;
    let tokens = 0;
    faulted.outcomes.forEach((outcome, i) => {
      const want = reference.outcomes[i]!.tokens.map((t) => t.id);
      tokens += outcome.tokens.length;
      if (outcome.error || outcome.failure)
        failures.push(`request ${i}: ${outcome.error?.code ?? outcome.failure}`);
      else if (
        outcome.tokens.length === want.length &&
        outcome.tokens.every((t, k) => t.id === want[k])
      )
        whole++;
      else
        failures.push(`request ${i}: ${outcome.tokens.length} of ${want.length} tokens, or others`);
    });
    const referenceWhole = reference.outcomes.filter(
      (o, i) => !o.error && !o.failure && o.tokens.length === requests[i]!.maxTokens,
    ).length;
    const before = windowMedian(reference.samples, plan.requests);
    const after = windowMedian(faulted.samples, plan.requests);
    const names = [...before.keys()].filter((n) => after.has(n)).sort();
    const growth = names.map((n) => after.get(n)! / before.get(n)!);
    const e2e = summarize(
      faulted.outcomes.map((o) => (o.tokens.at(-1)?.at ?? 0) - (o.openedAt ?? 0)),
    );
    const checks: BenchCheck[] = [
      check(
        'requests whole through the faults',
        whole / plan.requests,
        1,
        'requests with the tokens of the same request in the pass without faults / requests',
      ),
      check(
        'memory of the long-lived processes after the faults vs before (worst)',
        growth.length > 0 ? Math.max(...growth) : Number.NaN,
        RSS_GROWTH_LIMIT,
        `median RSS over the last ${WINDOW_REQUESTS} requests of the pass with faults / of the pass without, per process (coordinator and the workers never hit)`,
        '<=',
      ),
      check(
        'processes that died unasked, and faults they survived',
        unexpected.length + processFaults.length,
        0,
        'unexpected exits + logged unhandled rejections',
        '<=',
      ),
    ];
    const fmt = (v: number, digits = 1) => v.toFixed(digits);
    const recovery = summarize(faulted.faults.map((f) => f.recoveryMs));
    return {
      suite: 'soak-faults',
      title: `Soak with faults: ${plan.requests} requests, a worker hit every ${plan.faultEvery}`,
      ...resultHeader(context, started, model, `synthetic preset ${shape.preset}`),
      options: {
        ...shape,
        ...plan,
        workers: WORKERS,
        concurrency: CONCURRENCY,
        heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      },
      notes: [
        `The soak mix (prompts ${shape.promptTokens.join('..')} tokens, ${shape.outputTokens.join('..')} greedy output tokens, ignore_eos), ${CONCURRENCY} in flight, over a coordinator and ${WORKERS} worker processes (even plan, heartbeat timeout ${HEARTBEAT_TIMEOUT_MS} ms). First the ${plan.requests} requests without faults (the reference tokens, and the memory baseline); then the same requests while ${cluster.workerName(VICTIM)} is hit every ${plan.faultEvery} requests — kill -9, SIGTERM, SIGSTOP past the heartbeat timeout, in turn — and brought back (started again, or SIGCONT) as soon as the coordinator has recovered without it; the load never pauses.`,
        `The pass without faults: ${referenceWhole}/${plan.requests} whole in ${fmt(reference.wallMs / 1000)} s. Memory is each long-lived process's RSS from /proc every ${SAMPLE_EVERY} requests, compared as the median over the last ${WINDOW_REQUESTS} requests of each pass.`,
        failures.length > 0
          ? `Failures: ${failures.slice(0, 5).join('; ')}`
          : 'Every request came back whole.',
        ...unexpected.map((e) => `UNEXPECTED EXIT: ${e.slice(0, 400)}`),
        ...processFaults.map((e) => `PROCESS FAULT: ${e.slice(0, 400)}`),
      ],
      metrics: {
        e2eMs: { unit: 'ms', summary: e2e },
        recoveryMs: {
          unit: 'ms',
          summary: recovery,
          samples: faulted.faults.map((f) => f.recoveryMs),
        },
        tokensPerS: { unit: 'tok/s', summary: summarize([(tokens * 1000) / faulted.wallMs]) },
        ...Object.fromEntries(
          names.map((n, i) => [
            `rssGrowth.${n}`,
            { unit: 'ratio', summary: summarize([growth[i]!]) },
          ]),
        ),
      },
      tables: [
        {
          title: 'Requests',
          head: [
            'requests',
            'whole',
            'tokens',
            'tok/s with faults',
            'tok/s without',
            'e2e p50 ms',
            'e2e p99 ms',
          ],
          rows: [
            [
              plan.requests,
              whole,
              tokens,
              fmt((tokens * 1000) / faulted.wallMs),
              fmt((tokens * 1000) / reference.wallMs),
              fmt(e2e.median),
              fmt(e2e.p99),
            ],
          ],
        },
        {
          title: 'Faults',
          head: ['at request', 'signal', 'recovered in ms', 'worker back in ms'],
          rows: faulted.faults.map((f) => [
            f.atRequest,
            f.kind,
            Math.round(f.recoveryMs),
            Math.round(f.backMs),
          ]),
        },
        {
          title: 'Memory of the long-lived processes (RSS)',
          head: ['process', 'without faults MiB', 'with faults MiB', 'ratio'],
          rows: names.map((n, i) => [
            n,
            fmt(before.get(n)! / MIB),
            fmt(after.get(n)! / MIB),
            fmt(growth[i]!, 3),
          ]),
        },
      ],
      checks,
      charts: [
        {
          file: 'soak-faults-rss.svg',
          title: 'Memory of the long-lived processes',
          svg: lineChart({
            title: 'RSS (MiB) against requests done: without faults, then with (offset)',
            xLabel: `requests done (the pass with faults from ${plan.requests})`,
            yLabel: 'MiB',
            series: names.map((n) => ({
              name: n,
              points: [
                ...reference.samples.map((s): [number, number] => [
                  s.done,
                  (s.rss.get(n) ?? 0) / MIB,
                ]),
                ...faulted.samples.map((s): [number, number] => [
                  plan.requests + s.done,
                  (s.rss.get(n) ?? 0) / MIB,
                ]),
              ],
            })),
          }),
        },
      ],
    };
  },
};
