/**
 * The `plan` part of `npm run bench -- parallel` (issue 19, item 4): what the planner predicts
 * and chooses on the benchmark's scenarios — the 110M preset on 2 or 4 devices at speed factor
 * 0.25, links 1 Gbit/s + 0.2 ms and 100 Mbit/s + 2 ms (`PLAN_SCENARIOS`, estimated profiles,
 * nothing measured): the layouts the emulated runs measure (one device, PP2, TP2, TP4) predicted
 * side by side, and pure pipeline, pure tensor and hybrid plans per objective. Pure: seconds.
 */
import { summarize } from '@swarmbee/optimize';
import {
  CostModel,
  compareParallelism,
  formatMs,
  PLAN_SCENARIOS,
  type PlanResult,
  type ScenarioCalibration,
  type StageAssignment,
  scenarioCluster,
  scenarioTensorCosts,
  stageDevicesText,
} from '@swarmbee/planner';
import { type BenchResult, check } from '../report/report.js';
import type { SuiteContext } from '../suite.js';

type PartResult = Omit<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine'>;

/** The layouts the emulated runs measure. */
const LAYOUTS: { name: string; devices: number; tensor: boolean }[] = [
  { name: 'one device', devices: 1, tensor: false },
  { name: 'PP2', devices: 2, tensor: false },
  { name: 'TP2', devices: 2, tensor: true },
  { name: 'TP4', devices: 4, tensor: true },
];

/** A layout over devices 0 … n − 1; a group as the planner would run it (its weights and all-reduce). */
function layoutStages(nLayers: number, layout: (typeof LAYOUTS)[number]): StageAssignment[] {
  const devices = Array.from({ length: layout.devices }, (_, i) => i);
  if (layout.tensor) return [{ device: 0, layerStart: 0, layerEnd: nLayers, group: devices }];
  const per = Math.ceil(nLayers / layout.devices);
  return devices.map((device, index) => ({
    device,
    layerStart: index * per,
    layerEnd: Math.min(nLayers, (index + 1) * per),
  }));
}

const stagesText = (r: PlanResult) =>
  r.stages.map((s) => `${stageDevicesText(s)}[${s.layerStart}-${s.layerEnd - 1}]`).join(' ');

/**
 * One stream on scenario `id`: each layout's predicted ms/token, by layout name; with a
 * calibration, on devices scaled to a core measured in the same run.
 */
export function predictedLayoutMs(
  id: string,
  calibration: ScenarioCalibration = {},
): Map<string, number> {
  const cost = new CostModel(
    scenarioCluster(id, undefined, calibration),
    {},
    scenarioTensorCosts(id, calibration),
  );
  return new Map(
    LAYOUTS.map((layout) => [
      layout.name,
      cost.evaluate(layoutStages(cost.nLayers, layout), 1, 1).tpotNs / 1e6,
    ]),
  );
}

export function planPart(context: SuiteContext): PartResult {
  context.progress('parallel plan: the planner on the benchmark scenarios');
  const metrics: PartResult['metrics'] = {};
  const layoutRows: (string | number)[][] = [];
  // One stream on the 4-device scenarios: each layout on its devices, predicted.
  for (const id of ['tp-x4-1gbit', 'tp-x4-100mbit']) {
    const predicted = predictedLayoutMs(id);
    const ms = LAYOUTS.map((layout) => predicted.get(layout.name)!);
    LAYOUTS.forEach((layout, i) => {
      const ratio = ms[i]! / ms[0]!;
      layoutRows.push([id, layout.name, formatMs(ms[i]!), ratio.toFixed(2)]);
      metrics[`plan.${id}.${layout.name.replace(' ', '-')}.msPerToken`] = {
        unit: 'ms',
        summary: summarize([ms[i]!]),
      };
    });
  }
  const choiceRows: (string | number)[][] = [];
  const chosen = new Map<string, PlanResult>();
  for (const scenario of PLAN_SCENARIOS) {
    const cluster = scenarioCluster(scenario.id);
    const { tensorCosts } = scenario;
    for (const objective of ['latency', 'throughput'] as const) {
      const entries = compareParallelism({ cluster }, { objective, tensorCosts });
      const pipeline = entries[0]!.result!;
      for (const { parallelism, result, error } of entries) {
        if (!result) {
          choiceRows.push([scenario.id, objective, parallelism, error?.code ?? '-', '', '', '']);
          continue;
        }
        if (parallelism === 'hybrid') chosen.set(`${scenario.id}/${objective}`, result);
        choiceRows.push([
          scenario.id,
          objective,
          parallelism,
          stagesText(result),
          formatMs(result.tpotMs),
          result.tokensPerS.toFixed(1),
          (objective === 'latency'
            ? result.tpotMs / pipeline.tpotMs
            : result.tokensPerS / pipeline.tokensPerS
          ).toFixed(2),
        ]);
      }
    }
  }
  const groupIn = (r: PlanResult | undefined) => r?.stages.some((s) => s.tensor) ?? false;
  const fastLinks = PLAN_SCENARIOS.filter((s) => s.link.rttMs < 1);
  const slowLinks = PLAN_SCENARIOS.filter((s) => s.link.rttMs >= 1);
  return {
    suite: 'parallel',
    title: 'Parallel: the planner on the benchmark scenarios (predicted)',
    options: { scenarios: PLAN_SCENARIOS.map((s) => s.id) },
    notes: [
      'Predicted, not measured: `PLAN_SCENARIOS` (packages/planner/src/scenarios.ts) estimate the 110M preset on devices at speed factor 0.25 of one core of this machine (fitted to 29.8 ms/token in one engine), links 1 Gbit/s + 0.2 ms and 100 Mbit/s + 2 ms one way. `swarmbee plan --preset ID --compare` prints the same. An emulated member paces each segment run at its speed, so the scenarios charge a segment run 0.09 / 0.25 = 0.36 ms (the all-reduce CPU per part, 0.12 ms, is not stretched). Runs over shaped links are judged from their own measured profile.',
      'A tensor-parallel group costs, per layer, the slowest member’s share, 2 segment runs and 2 all-reduces predicted by predictAllReduceMs over its slowest link (0.12 ms CPU per part); see docs/ARCHITECTURE.md, "Tensor-parallel plans".',
      '"× pipeline": the objective\'s figure against the pure-pipeline plan\'s — ms/token for latency (where the pipeline is one device), tokens/s for throughput.',
    ],
    metrics,
    tables: [
      {
        title: 'One stream, the layouts the emulated runs measure: predicted ms/token',
        head: ['scenario', 'layout', 'ms/token', '× one device'],
        rows: layoutRows,
      },
      {
        title: "The planner's choices per scenario and objective",
        head: [
          'scenario',
          'objective',
          'parallelism',
          'stages',
          'ms/token',
          'tokens/s',
          '× pipeline',
        ],
        rows: choiceRows,
      },
    ],
    checks: [
      check(
        'latency, 1 Gbit/s + 0.2 ms: the hybrid plan has a tensor-parallel group',
        fastLinks.filter((s) => groupIn(chosen.get(`${s.id}/latency`))).length,
        fastLinks.length,
        'scenarios tp-x2-1gbit and tp-x4-1gbit, hybrid plan for the latency objective',
      ),
      check(
        'latency, 100 Mbit/s + 2 ms: the hybrid plan has no group (tensor parallelism stops paying)',
        slowLinks.filter((s) => !groupIn(chosen.get(`${s.id}/latency`))).length,
        slowLinks.length,
        'scenarios tp-x2-100mbit and tp-x4-100mbit, hybrid plan for the latency objective',
      ),
      check(
        'throughput: the hybrid plan is a pipeline (no group)',
        PLAN_SCENARIOS.filter((s) => !groupIn(chosen.get(`${s.id}/throughput`))).length,
        PLAN_SCENARIOS.length,
        'every scenario, hybrid plan for the throughput objective',
      ),
    ],
    charts: [],
  };
}
