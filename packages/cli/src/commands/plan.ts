/**
 * `swarmbee plan`: choose a plan from a measured profile, or explore one from device
 * presets or a benchmark scenario; `--compare` shows pure pipeline, pure tensor and hybrid
 * side by side, `--compare-planners` every planner. Pure: no cluster.
 */
import { readFile } from 'node:fs/promises';
import {
  type ClusterProfile,
  InvalidArgumentError,
  modelSummaryFromManifest,
} from '@swarmbee/core';
import { openModelDir } from '@swarmbee/model';
import {
  clusterFromPresets,
  compareParallelism,
  comparePlanners,
  comparisonRows,
  DEVICE_PRESETS,
  findPreset,
  findScenario,
  LLAMA2_7B_CONFIG,
  llamaModelSummary,
  type Objective,
  PARALLELISMS,
  type Parallelism,
  PLAN_SCENARIOS,
  type PlannerName,
  type PlanOptions,
  parallelismRows,
  plan,
  scenarioCluster,
  stageRows,
  summaryRows,
  TINYLLAMA_1B_CONFIG,
  type Workload,
} from '@swarmbee/planner';
import type { Argv } from 'yargs';
import { renderTable } from '../ui/table.js';

const MODEL_SHAPES = {
  'llama2-7b': LLAMA2_7B_CONFIG,
  'tinyllama-1b': TINYLLAMA_1B_CONFIG,
} as const;

export function planCommand(yargs: Argv): Argv {
  return yargs.command(
    'plan',
    'Choose which devices run which layers, from a measured profile or from device presets',
    (y) =>
      y
        .option('profile', {
          type: 'string',
          describe: 'Cluster profile JSON from swarmbee profile --out',
        })
        .option('preset', {
          choices: PLAN_SCENARIOS.map((s) => s.id),
          describe: `A benchmark scenario instead of a profile: ${PLAN_SCENARIOS.map((s) => `${s.id} (${s.description})`).join('; ')}`,
        })
        .option('model', { type: 'string', describe: 'With --devices: a model dir to plan for' })
        .option('model-shape', {
          choices: Object.keys(MODEL_SHAPES),
          describe: 'With --devices: a known model shape instead of a model dir',
        })
        .option('devices', {
          type: 'string',
          describe: `With --model: preset devices, PRESET[:COUNT],... (presets: ${DEVICE_PRESETS.map((p) => p.id).join(', ')})`,
        })
        .option('link-mbit', {
          type: 'number',
          default: 1000,
          describe: 'With --devices: link bandwidth between all nodes, Mbit/s',
        })
        .option('link-rtt-ms', {
          type: 'number',
          default: 0.3,
          describe: 'With --devices: link round-trip time, ms',
        })
        .option('objective', {
          choices: ['latency', 'throughput'] as const,
          default: 'latency' as const,
          describe: 'What the plan optimizes',
        })
        .option('parallelism', {
          choices: PARALLELISMS,
          default: 'pipeline' as const,
          describe:
            'pipeline: one device per stage; tensor: one stage of every layer on a tensor-parallel group; hybrid: stages that may each be a group, as the objective prefers',
        })
        .option('planner', {
          choices: ['dp', 'ga', 'pso', 'auto', 'solo', 'even', 'memory'] as const,
          default: 'dp' as const,
          describe: 'Which planner to run',
        })
        .option('pin-first', { type: 'string', describe: 'Device that must run stage 0' })
        .option('pin-last', { type: 'string', describe: 'Device that must run the last stage' })
        .option('context', {
          type: 'number',
          describe: "Context tokens the KV cache is sized for (default: the model's)",
        })
        .option('kv-dtype', {
          choices: ['float32', 'float16'] as const,
          default: 'float32' as const,
          describe:
            "KV-cache element type of the model's Llama shards: float16 holds twice the context in the same memory (fidelity: docs/BENCHMARKS.md)",
        })
        .option('prompt', {
          type: 'number',
          describe: 'Prompt tokens the time to first token is predicted for (default 128)',
        })
        .option('streams', {
          type: 'number',
          describe:
            'Throughput objective: concurrent streams to plan for; micro-batches then carry ⌈streams / in flight⌉ rows, as serving composes them (default: batch size and count chosen freely)',
        })
        .option('risk', {
          choices: ['p50', 'p90'] as const,
          default: 'p50' as const,
          describe:
            "Plan on the profile's medians (p50) or 90th percentiles (p90: a plan that holds on a bad run)",
        })
        .option('compare', {
          type: 'boolean',
          default: false,
          describe:
            'Print pure pipeline, pure tensor and hybrid plans side by side, predicted (stages with their groups, TTFT, ms/token, tokens/s, bottleneck)',
        })
        .option('compare-planners', {
          type: 'boolean',
          default: false,
          describe: 'Print every planner side by side',
        })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'Print the plan (or comparison) as JSON',
        }),
    async (args) => {
      const cluster = await clusterFrom(args);
      const workload: Partial<Workload> = { risk: args.risk, kvDtype: args.kvDtype };
      if (args.context !== undefined) workload.contextTokens = args.context;
      if (args.prompt !== undefined) workload.promptTokens = args.prompt;
      if (args.streams !== undefined) workload.streams = args.streams;
      const options: PlanOptions = {
        objective: args.objective as Objective,
        planner: args.planner as PlannerName,
        parallelism: args.parallelism as Parallelism,
      };
      // A scenario's emulated devices stretch a segment run's fixed cost with their speed.
      if (args.preset) options.tensorCosts = findScenario(args.preset).tensorCosts;
      if (args.pinFirst) options.pinFirst = args.pinFirst;
      if (args.pinLast) options.pinLast = args.pinLast;
      const request = { cluster, workload };
      const json = (entries: unknown) => `${JSON.stringify(entries, null, 2)}\n`;
      if (args.comparePlanners) {
        const entries = comparePlanners(request, options);
        process.stdout.write(args.json ? json(entries) : `${table(comparisonRows(entries))}\n`);
        return;
      }
      if (args.compare) {
        const entries = compareParallelism(request, options);
        process.stdout.write(args.json ? json(entries) : `${table(parallelismRows(entries))}\n`);
        return;
      }
      const result = plan(request, options);
      if (args.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${table(stageRows(result))}\n${table(summaryRows(result), false)}\n`);
    },
  );
}

function table(rows: string[][], header = true): string {
  return header ? renderTable(rows[0]!, rows.slice(1)) : renderTable([], rows);
}

async function clusterFrom(args: {
  profile?: string;
  preset?: string;
  model?: string;
  modelShape?: string;
  devices?: string;
  linkMbit: number;
  linkRttMs: number;
}): Promise<ClusterProfile> {
  if (args.profile) return JSON.parse(await readFile(args.profile, 'utf8')) as ClusterProfile;
  if (args.preset) return scenarioCluster(args.preset);
  if (!args.devices)
    throw new InvalidArgumentError(
      'give --profile FILE, --preset SCENARIO, or --devices with --model or --model-shape',
    );
  const model = args.model
    ? modelSummaryFromManifest((await openModelDir(args.model)).manifest)
    : args.modelShape
      ? llamaModelSummary(
          MODEL_SHAPES[args.modelShape as keyof typeof MODEL_SHAPES],
          args.modelShape,
        )
      : undefined;
  if (!model) throw new InvalidArgumentError('--devices needs --model DIR or --model-shape');
  const devices = args.devices.split(',').flatMap((spec) => {
    const [id, count = '1'] = spec.trim().split(':');
    const preset = findPreset(id!);
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`--devices: "${spec}" needs a positive count after the colon`);
    return Array.from({ length: n }, () => preset);
  });
  const names = devices.map(
    (p, i) => `${p.id}-${devices.slice(0, i).filter((q) => q.id === p.id).length + 1}`,
  );
  return clusterFromPresets(
    model,
    devices.map((preset, i) => ({ name: names[i]!, preset })),
    { rttMs: args.linkRttMs, bandwidthBytesPerS: (args.linkMbit * 1e6) / 8 },
  );
}
