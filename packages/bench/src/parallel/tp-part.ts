/**
 * The `tp` part of `npm run bench -- parallel`: one conversation faster than one device. The
 * 110M preset decodes one greedy stream over `swarmbee worker` processes: on devices emulated
 * at a quarter of a core behind 1 Gbit/s + 0.2 ms and 100 Mbit/s + 2 ms links, one device
 * against a pipeline of two (PP2) and tensor-parallel groups of two and four (TP2, TP4); and
 * unemulated, one worker against TP2 on two pinned cores. Ratios against one device measured
 * in the same rounds.
 */

import type { ModelDir } from '@swarmbee/model';
import { type Summary, summarize } from '@swarmbee/optimize';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import type { SuiteContext } from '../suite.js';
import { predictedLayoutMs } from './plan-part.js';
import { measureSetup, ONE_DEVICE, type SetupRuns, TP_DEVICE_SPEED, tpSetups } from './tp-runs.js';

/** Issue 19's targets at 1 Gbit/s: ms/token against one device. */
export const TP_TARGETS = { TP2: 0.6, TP4: 0.4 } as const;
/** Issue 19's target unemulated: TP2 on two pinned cores against one, single-stream speed-up. */
export const TP_PINNED_SPEEDUP_TARGET = 1.4;
/** How far the planner's ratio to one device may be from the measured one (issue 19: 15 %). */
export const TP_PREDICTION_TOLERANCE = 0.15;
/** Tokens decoded per stream after BOS. */
const TOKENS = 48;
const QUICK_TOKENS = 24;

/** Per round: layout ms/token over one device's in the same round. */
function ratios(runs: SetupRuns, label: string): Summary {
  const base = runs.runs.get(ONE_DEVICE.label)!;
  return summarize(runs.runs.get(label)!.map((r, i) => r.msPerToken / base[i]!.msPerToken));
}

function sameIds(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  return (
    a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i])
  );
}

export async function measureTpPart(
  context: SuiteContext,
  model: ModelDir,
): Promise<Omit<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine'>> {
  const rounds = context.quick ? 2 : 4;
  const tokens = context.quick ? QUICK_TOKENS : TOKENS;
  const measured: SetupRuns[] = [];
  for (const setup of tpSetups())
    measured.push(await measureSetup(context, model, setup, { tokens, rounds }));

  const f = (x: number, digits = 2) => x.toFixed(digits);
  const spread = (s: Summary, digits = 2) =>
    `${f(s.median, digits)} (${f(s.min, digits)}..${f(s.max, digits)})`;
  const pinned = measured.find((runs) => runs.setup.pinned)!;
  const [fast, slow] = measured.filter((runs) => runs.setup.link) as [SetupRuns, SetupRuns];
  // The planner's devices are this machine's core as measured in this run (one worker, one
  // thread, unemulated), slowed to the emulated speed.
  const coreMsPerToken = summarize(
    pinned.runs.get(ONE_DEVICE.label)!.map((r) => r.msPerToken),
  ).median;
  /** The planner's ratio to one device for a layout on an emulated setup's scenario. */
  const predicted = (runs: SetupRuns, label: string): number | undefined => {
    const scenario = runs.setup.link?.scenario;
    if (!scenario) return undefined;
    const ms = predictedLayoutMs(scenario, { coreMsPerToken });
    return ms.get(label)! / ms.get(ONE_DEVICE.label)!;
  };
  const tables = measured.map((runs) => ({
    title: `One stream, ${runs.setup.label}`,
    head: [
      'layout',
      'workers',
      'ms/token',
      '× one device',
      'planner predicts × one device',
      'same ids as one device',
    ],
    rows: runs.setup.layouts.map((layout) => {
      const ms = summarize(runs.runs.get(layout.label)!.map((r) => r.msPerToken));
      const forecast = predicted(runs, layout.label);
      return [
        layout.label,
        layout.workers,
        spread(ms, 1),
        layout === ONE_DEVICE ? '1' : spread(ratios(runs, layout.label)),
        forecast === undefined ? '-' : f(forecast),
        sameIds(runs.warmIds.get(layout.label), runs.warmIds.get(ONE_DEVICE.label)) ? 'yes' : 'NO',
      ];
    }),
  }));
  /** Worst |predicted / measured − 1| of the groups' ratios to one device on the slow link. */
  const slowError = Math.max(
    ...['TP2', 'TP4'].map((label) =>
      Math.abs(predicted(slow, label)! / ratios(slow, label).median - 1),
    ),
  );

  const checks: BenchCheck[] = [
    ...(['TP2', 'TP4'] as const).map((label) =>
      check(
        `${label} ms/token / one device, ${fast.setup.label}`,
        ratios(fast, label).median,
        TP_TARGETS[label],
        'median over rounds of the per-round ratio, one greedy stream, the 110M preset',
        '<=',
      ),
    ),
    check(
      'TP2 single-stream speed-up, two pinned cores against one (unemulated)',
      1 / ratios(pinned, 'TP2').median,
      TP_PINNED_SPEEDUP_TARGET,
      'one device ms/token / TP2 ms/token, per round, median; one onnxruntime thread per worker',
    ),
    check(
      `planner's TP2 and TP4 ratios to one device vs measured, ${slow.setup.label}, worst |predicted / measured − 1|`,
      slowError,
      TP_PREDICTION_TOLERANCE,
      "the plan part's scenario (swarmbee plan --preset) for the link, against the median measured ratio",
      '<=',
    ),
    check(
      'greedy ids of every layout equal one device’s',
      measured.every((runs) =>
        runs.setup.layouts.every((l) =>
          sameIds(runs.warmIds.get(l.label), runs.warmIds.get(ONE_DEVICE.label)),
        ),
      )
        ? 1
        : 0,
      1,
      'the warm-up stream of each layout, compared id by id',
    ),
  ];

  return {
    suite: 'parallel',
    title: 'Parallel: one stream over tensor-parallel groups',
    model: {
      name: model.manifest.name,
      modelHash: model.manifest.modelHash,
      weightBytes: model.manifest.weights.bytes,
      source: 'the 110M synthetic preset (fp32)',
    },
    options: { tpRounds: rounds, tpTokens: tokens, deviceSpeed: TP_DEVICE_SPEED },
    notes: [
      `One stream: BOS, then ${tokens} greedy tokens; ms/token is decode only (the first token excluded). Each layout runs in its own \`LocalCluster\` (the coordinator in this process, each worker a process, one onnxruntime thread each) under a given plan (\`coordinator --plan\`); the layouts of a setup are measured in turn in each of ${rounds} rounds after a warm-up, and each ratio is against one device in the same round.`,
      `Emulated devices run at ${TP_DEVICE_SPEED} of one core (\`--speed-factor ${TP_DEVICE_SPEED} --speed-basis cpu\`): a whole stage is stretched after each forward, a tensor-parallel member after each segment (its thread's own CPU time), so the waits for a group's sums are not stretched. Every outgoing data link of a worker, group links included, goes through the user-space link shaper; the coordinator's links do not.`,
      'TP2 sums by one exchange (a ring of two), TP4 at the leader (star), as the cost model picks at these sizes; the LM head is split by vocabulary at 1 Gbit/s and unemulated (one more sum, of 32,000 fp32, per token) and stays on the leader at 100 Mbit/s, as the planner chooses. Unemulated: worker i pinned to core i (taskset), so TP2 uses both cores of this machine and one device one.',
      'On this 2-core machine a group of four is not four devices: its members compute in step, so four stage threads share two cores, and every sum wakes four main threads at once (the proxy to the stage thread, the WebSocket, the link shaper, which checks the clock each event-loop turn while a part is due within 1.5 ms) — TP4 measures that CPU contention as much as the layout; TP2 and PP2 fit the cores.',
      `Predicted: the planner's cost model on the link's four-device scenario (\`swarmbee plan --preset tp-x4-1gbit\` / \`tp-x4-100mbit\`: nominal links), its devices calibrated to this run's unemulated one device (${coreMsPerToken.toFixed(1)} ms/token: the core's speed and the fixed CPU of a segment run and an all-reduce part scale with it), as a ratio to one device.`,
    ],
    metrics: Object.fromEntries(
      measured.flatMap((runs) =>
        runs.setup.layouts.map((layout) => [
          `tp.${runs.setup.label}.${layout.label}.msPerToken`,
          { unit: 'ms', summary: summarize(runs.runs.get(layout.label)!.map((r) => r.msPerToken)) },
        ]),
      ),
    ),
    tables,
    checks,
    charts: [
      {
        file: 'parallel-tp.svg',
        title: 'One stream: ms/token against one device',
        svg: barChart({
          title: 'ms/token / one device (lower is better)',
          unit: '×',
          bars: measured.flatMap((runs) =>
            runs.setup.layouts
              .filter((l) => l !== ONE_DEVICE)
              .map((l) => {
                const r = ratios(runs, l.label);
                return {
                  label: `${l.label}, ${runs.setup.label}`,
                  value: r.median,
                  low: r.min,
                  high: r.max,
                };
              }),
          ),
        }),
      },
    ],
  };
}
