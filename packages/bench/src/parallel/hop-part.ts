/**
 * The `hop` part of `npm run bench -- parallel`: what the data plane adds per hop. stories260K
 * decodes one greedy stream with its layers in N stages (N = 1, 2, 3), once in this process
 * (each stage in its own thread: the engine's thread hop only) and once over N `swarmbee worker`
 * processes on loopback (every hop a WebSocket frame); the difference per token, over the
 * N + 1 network hops a token takes (coordinator → stage 0, stage → stage, last stage →
 * coordinator), is the time the data plane adds per hop.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { postJson } from '@swarmbee/coordinator';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { LocalCluster } from '@swarmbee/local-cluster';
import { cacheRoot, type ModelDir } from '@swarmbee/model';
import { type Summary, summarize } from '@swarmbee/optimize';
import { type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import type { SuiteContext } from '../suite.js';

/** Stage counts measured. */
export const HOP_STAGE_COUNTS = [1, 2, 3] as const;
/** The target for the time a network hop adds, ms. */
export const HOP_TARGET_MS = 0.25;
/** Positions each stream runs: BOS then this many greedy tokens (stories260K holds 512). */
const DECODE_TOKENS = 256;
const QUICK_DECODE_TOKENS = 96;

interface Round {
  /** ms per decoded token by stage count. */
  inProcess: Map<number, number>;
  cluster: Map<number, number>;
  /** CPU ms per decoded token, every thread of every process taking part. */
  inProcessCpu: Map<number, number>;
  clusterCpu: Map<number, number>;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (Linux's USER_HZ). */
const USER_HZ = 100;

/** CPU time (user + system, every thread) of processes, ms, from /proc; this process exactly. */
function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  const own = process.cpuUsage();
  return (ticks * 1000) / USER_HZ + (own.user + own.system) / 1000;
}

interface HopFigures {
  rounds: Round[];
  /** Bytes stage 0 sent per token it forwarded, 2 and 3 stages (the stage → stage hop). */
  bytesPerHop: Map<number, number>;
  /** Bytes per token the coordinator sent stage 0 and the last stage sent back. */
  edgeBytes: { toStage0: number; fromLast: number };
  /** Greedy ids over worker processes equal the in-process ids, per stage count. */
  sameIds: Map<number, boolean>;
  load: { before: number[]; after: number[] };
}

async function inProcessDecode(
  model: ModelDir,
  pipeline: LocalPipeline,
  tokens: number,
): Promise<{ msPerToken: number; ids: number[] }> {
  const [result] = await generate(pipeline, [
    { promptIds: [1], steps: tokens, sampling: { temperature: 0, topK: 0, topP: 1 }, stopIds: [] },
  ]);
  if (!result || result.tokensPerSecond <= 0)
    throw new Error(`in-process decode of ${model.manifest.name} measured no tokens`);
  return { msPerToken: 1000 / result.tokensPerSecond, ids: result.ids };
}

async function clusterDecode(
  cluster: LocalCluster,
  tokens: number,
): Promise<{ msPerToken: number; ids: number[] }> {
  const json = await postJson<{
    choices: { token_ids?: number[] }[];
    timings: { tokens_per_s: number };
  }>({ url: cluster.apiUrl }, '/v1/completions', {
    prompt: [1],
    max_tokens: tokens,
    temperature: 0,
    ignore_eos: true,
  });
  return {
    msPerToken: 1000 / json.timings.tokens_per_s,
    ids: json.choices[0]?.token_ids ?? [],
  };
}

async function measureHops(
  context: SuiteContext,
  model: ModelDir,
  tokens: number,
  rounds: number,
): Promise<HopFigures> {
  const load = { before: loadavg(), after: [] as number[] };
  const pipelines = new Map<number, LocalPipeline>();
  const clusters = new Map<number, LocalCluster>();
  const figures: HopFigures = {
    rounds: [],
    bytesPerHop: new Map(),
    edgeBytes: { toStage0: 0, fromLast: 0 },
    sameIds: new Map(),
    load,
  };
  try {
    for (const stages of HOP_STAGE_COUNTS) {
      context.progress(`parallel hop: ${stages} stage(s) in process and over worker processes`);
      pipelines.set(
        stages,
        await LocalPipeline.create(model, { stages, stage: { intraOpThreads: 1 } }),
      );
      const cluster = await LocalCluster.start({
        model,
        workers: stages,
        cliBin: context.cliBin,
        cacheDir: join(cacheRoot(), 'bench', 'parallel-hop', `stages-${stages}`),
        threads: 1,
        workerOutput: 'ignore',
        coordinator: { planning: { planner: 'even' } },
      });
      clusters.set(stages, cluster);
      // Warm-up, excluded; and the greedy ids of both, compared.
      const local = await inProcessDecode(model, pipelines.get(stages)!, tokens);
      const remote = await clusterDecode(cluster, tokens);
      figures.sameIds.set(
        stages,
        local.ids.length === remote.ids.length && local.ids.every((id, i) => id === remote.ids[i]),
      );
    }
    for (let round = 0; round < rounds; round++) {
      context.progress(`parallel hop: round ${round + 1}/${rounds}`);
      const measured: Round = {
        inProcess: new Map(),
        cluster: new Map(),
        inProcessCpu: new Map(),
        clusterCpu: new Map(),
      };
      for (const stages of HOP_STAGE_COUNTS) {
        let cpuStart = cpuMs([]);
        measured.inProcess.set(
          stages,
          (await inProcessDecode(model, pipelines.get(stages)!, tokens)).msPerToken,
        );
        measured.inProcessCpu.set(stages, (cpuMs([]) - cpuStart) / tokens);
        const cluster = clusters.get(stages)!;
        const before = await cluster.coordinator.workerStats();
        const pids = cluster.workers.map((w) => w.pid!);
        cpuStart = cpuMs(pids);
        measured.cluster.set(stages, (await clusterDecode(cluster, tokens)).msPerToken);
        measured.clusterCpu.set(stages, (cpuMs(pids) - cpuStart) / tokens);
        if (round === 0) {
          const after = await cluster.coordinator.workerStats();
          const names = cluster.coordinator.deployment.map((s) => s.worker);
          const sent = (name: string) =>
            (after[name]?.bytesSent ?? 0) - (before[name]?.bytesSent ?? 0);
          // Each stage forwarded BOS and every sampled token but the last.
          const forwarded = tokens;
          if (stages > 1) figures.bytesPerHop.set(stages, sent(names[0]!) / forwarded);
          if (stages === 1) figures.edgeBytes.fromLast = sent(names[0]!) / forwarded;
        }
      }
      figures.rounds.push(measured);
    }
    load.after = loadavg();
    return figures;
  } finally {
    await Promise.allSettled([...pipelines.values()].map((p) => p.close()));
    await Promise.allSettled([...clusters.values()].map((c) => c.stop()));
  }
}

/** What a hop is measured by: wall ms per token, or CPU ms per token of every process. */
type HopClock = 'wall' | 'cpu';

/** Per round: (cluster − in-process) ms per token / (N + 1) hops, by `clock`. */
function addedPerHop(figures: HopFigures, stages: number, clock: HopClock = 'wall'): Summary {
  return summarize(
    figures.rounds.map((r) => {
      const [cluster, local] =
        clock === 'wall' ? [r.cluster, r.inProcess] : [r.clusterCpu, r.inProcessCpu];
      return (cluster.get(stages)! - local.get(stages)!) / (stages + 1);
    }),
  );
}

/** Per round: what each stage past the first adds, ms (N stages against 1, same setup). */
function addedPerStage(
  figures: HopFigures,
  which: 'inProcess' | 'cluster',
  stages: number,
): Summary {
  return summarize(
    figures.rounds.map((r) => (r[which].get(stages)! - r[which].get(1)!) / (stages - 1)),
  );
}

export async function measureHopPart(
  context: SuiteContext,
  model: ModelDir,
): Promise<Omit<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine'>> {
  const rounds = context.quick ? 2 : 7;
  const tokens = context.quick ? QUICK_DECODE_TOKENS : DECODE_TOKENS;
  const figures = await measureHops(context, model, tokens, rounds);
  const ms = (x: number) => x.toFixed(3);
  const spread = (s: Summary) => `${ms(s.min)}..${ms(s.max)}`;
  const median = (which: 'inProcess' | 'cluster' | 'inProcessCpu' | 'clusterCpu', stages: number) =>
    summarize(figures.rounds.map((r) => r[which].get(stages)!));
  /** Per stage count: in process, over workers, hops, added per hop (and bytes, ids for wall). */
  const hopRows = (clock: HopClock) =>
    HOP_STAGE_COUNTS.map((stages) => {
      const local = median(clock === 'wall' ? 'inProcess' : 'inProcessCpu', stages);
      const remote = median(clock === 'wall' ? 'cluster' : 'clusterCpu', stages);
      const hop = addedPerHop(figures, stages, clock);
      const row: (string | number)[] = [
        stages,
        `${ms(local.median)} (${spread(local)})`,
        `${ms(remote.median)} (${spread(remote)})`,
        stages + 1,
        `${ms(hop.median)} (${spread(hop)})`,
      ];
      if (clock === 'cpu') return row;
      return [
        ...row,
        figures.bytesPerHop.has(stages) ? figures.bytesPerHop.get(stages)!.toFixed(0) : '-',
        figures.sameIds.get(stages) ? 'yes' : 'NO',
      ];
    });
  const rows = hopRows('wall');
  const cpuRows = hopRows('cpu');
  const stageRows = HOP_STAGE_COUNTS.filter((n) => n > 1).map((stages) => {
    const local = addedPerStage(figures, 'inProcess', stages);
    const remote = addedPerStage(figures, 'cluster', stages);
    return [
      stages,
      `${ms(local.median)} (${spread(local)})`,
      `${ms(remote.median)} (${spread(remote)})`,
    ];
  });
  const worstHop = Math.max(...HOP_STAGE_COUNTS.map((n) => addedPerHop(figures, n).median));
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  return {
    suite: 'parallel',
    title: 'Parallel: the data plane, ms added per hop',
    model: {
      name: model.manifest.name,
      modelHash: model.manifest.modelHash,
      weightBytes: model.manifest.weights.bytes,
      source: 'stories260K (llama2.c checkpoint, ../shared/models)',
    },
    options: { rounds, tokens, stageCounts: [...HOP_STAGE_COUNTS] },
    notes: [
      `One stream: BOS, then ${tokens} greedy tokens (no stop id), one onnxruntime thread per stage. In process: the stages in their own threads of one process (\`LocalPipeline\`, the scheduler of \`generate\`). Over workers: N \`swarmbee worker\` processes on loopback behind a coordinator in the benchmark process, an even split, the same scheduler. ms/token excludes the first token (decode only).`,
      `Every setup stays up; each of ${rounds} round(s) runs each once, in turn, and differences are taken within a round (median, spread min..max). A token crosses N + 1 network hops over workers (coordinator → stage 0, stage → stage, last stage → coordinator) where it crosses N − 1 thread hops in process, so "added per hop" = (over workers − in process) / (N + 1). One warm-up run per setup is excluded; its greedy ids over workers are compared with the in-process ids.`,
      'CPU ms per token: user + system time of every thread, from /proc/<pid>/stat for the workers (10 ms ticks, over a run of hundreds of ms) and process.cpuUsage() for this process (the coordinator, or the in-process pipeline); it counts the work a hop costs whatever else the cores are doing, where wall time also counts waiting for a core. onnxruntime threads spin up to 20 µs after each kernel in both setups.',
      `Load average (1, 5, 15 min) before: ${load(figures.load.before)}; after: ${load(figures.load.after)} (2 cores, shared with other work).`,
      `Bytes per stage → stage hop: stage 0's data-plane bytes sent per token it forwarded (a forward frame of one row carrying a [1, 1, ${model.manifest.config.dim}] float32 hidden state); the last stage sends ${figures.edgeBytes.fromLast.toFixed(0)} bytes per token back to the coordinator (1 stage).`,
    ],
    metrics: Object.fromEntries(
      HOP_STAGE_COUNTS.flatMap((stages) => [
        [
          `inProcess.${stages}.msPerToken`,
          {
            unit: 'ms',
            summary: median('inProcess', stages),
            samples: figures.rounds.map((r) => r.inProcess.get(stages)!),
          },
        ],
        [
          `workers.${stages}.msPerToken`,
          {
            unit: 'ms',
            summary: median('cluster', stages),
            samples: figures.rounds.map((r) => r.cluster.get(stages)!),
          },
        ],
        [`workers.${stages}.addedMsPerHop`, { unit: 'ms', summary: addedPerHop(figures, stages) }],
        [
          `workers.${stages}.addedCpuMsPerHop`,
          { unit: 'ms', summary: addedPerHop(figures, stages, 'cpu') },
        ],
      ]),
    ),
    tables: [
      {
        title: 'Decode ms/token: in process against worker processes',
        head: [
          'stages',
          'in process ms/token',
          'workers ms/token',
          'hops',
          'added ms/hop',
          'bytes/hop',
          'same ids',
        ],
        rows,
      },
      {
        title: 'CPU ms per token (every thread of the processes taking part)',
        head: ['stages', 'in process', 'workers', 'hops', 'added CPU ms/hop'],
        rows: cpuRows,
      },
      {
        title: 'Added ms per extra stage (N stages against 1, same setup)',
        head: ['stages', 'in process', 'workers'],
        rows: stageRows,
      },
    ],
    checks: [
      check(
        'added ms per network hop (worst stage count)',
        worstHop,
        HOP_TARGET_MS,
        '(workers − in process) ms/token / (N + 1) hops, median of per-round differences, worst of N = 1, 2, 3',
        '<=',
      ),
      check(
        'added CPU ms per network hop (worst stage count)',
        Math.max(...HOP_STAGE_COUNTS.map((n) => addedPerHop(figures, n, 'cpu').median)),
        HOP_TARGET_MS,
        '(workers − in process) CPU ms/token / (N + 1) hops, median of per-round differences, worst of N = 1, 2, 3',
        '<=',
      ),
      check(
        'greedy ids over workers equal in-process ids',
        [...figures.sameIds.values()].every(Boolean) ? 1 : 0,
        1,
        'warm-up run of each stage count, ids compared token by token',
      ),
    ],
    charts: [
      {
        file: 'parallel-hop.svg',
        title: 'Decode ms/token, in process and over workers',
        svg: barChart({
          title: 'stories260K decode ms/token (lower is better)',
          unit: 'ms',
          bars: HOP_STAGE_COUNTS.flatMap((stages) =>
            (['inProcess', 'cluster'] as const).map((which) => {
              const s = median(which, stages);
              return {
                label: `${stages} stage(s) ${which === 'inProcess' ? 'in process' : 'workers'}`,
                value: s.median,
                low: s.min,
                high: s.max,
              };
            }),
          ),
        }),
      },
    ],
  };
}
