/**
 * Planning scenarios of issue 19's `parallel` benchmark: the 110M preset on emulated slow
 * devices (speed factor 0.25 of this machine: `swarmbee worker --speed-factor 0.25`), 2 or 4
 * of them, on links shaped to 1 Gbit/s + 0.2 ms or 100 Mbit/s + 2 ms (one-way delay, so
 * twice that round trip). `swarmbee plan --compare --preset NAME` shows pure pipeline, pure
 * tensor and hybrid side by side, predicted: where tensor parallelism stops paying. An
 * emulated member paces each segment run at its speed (`paceSegments`), so a segment's fixed
 * cost stretches with it: the scenarios plan with `segmentRunMs` / speed factor; the
 * all-reduce's CPU per part is not stretched. A run over real (or shaped) links is judged by
 * the planner from its own measured profile, not from these estimates.
 */
import {
  type ClusterProfile,
  InvalidArgumentError,
  type LlamaConfig,
  STORIES110M_SHAPE,
} from '@swarmbee/core';
import type { DeviceSpec } from './analytic.js';
import { DEFAULT_TENSOR_COSTS, type TensorCosts } from './group-cost.js';
import { llamaModelSummary } from './model-summary.js';
import { clusterFromPresets, type DevicePreset, type LinkSpec } from './presets.js';

/** The benchmark model's shape (`stories110m` synthetic preset of @swarmbee/model). */
export const STORIES110M_PRESET_CONFIG: Readonly<LlamaConfig> = {
  ...STORIES110M_SHAPE,
  normEps: 1e-5,
  ropeTheta: 10000,
  sharedClassifier: true,
};

/**
 * The 110M preset's ms per token in one engine on one onnxruntime thread that
 * {@link BENCH_CORE} is fitted to (scripts/tp-costs.ts under load, docs/BENCHMARKS.md).
 */
export const BENCH_CORE_MS_PER_TOKEN = 29.8;

/**
 * One core of this machine on one onnxruntime thread, as the analytic model: fitted to the
 * 110M preset's {@link BENCH_CORE_MS_PER_TOKEN} ms per token in one engine.
 */
export const BENCH_CORE: Readonly<DeviceSpec> = {
  memoryBytes: 4 * 1024 ** 3,
  memoryBandwidthBytesPerS: 11.75e9,
  computeFlopsPerS: 40e9,
  opOverheadMs: 0.05,
};

export interface PlanScenario {
  id: string;
  description: string;
  devices: number;
  /** Share of {@link BENCH_CORE}'s speed each device has. */
  speedFactor: number;
  link: LinkSpec;
  /** The tensor-parallel costs to plan it with: segment runs stretched by the speed factor. */
  tensorCosts: TensorCosts;
}

const GBIT: LinkSpec = { rttMs: 0.4, bandwidthBytesPerS: 125e6 };
const MBIT100: LinkSpec = { rttMs: 4, bandwidthBytesPerS: 12.5e6 };

export const PLAN_SCENARIOS: readonly PlanScenario[] = [
  { id: 'tp-x2-1gbit', devices: 2, link: GBIT, description: '2 devices, 1 Gbit/s + 0.2 ms' },
  { id: 'tp-x4-1gbit', devices: 4, link: GBIT, description: '4 devices, 1 Gbit/s + 0.2 ms' },
  { id: 'tp-x2-100mbit', devices: 2, link: MBIT100, description: '2 devices, 100 Mbit/s + 2 ms' },
  { id: 'tp-x4-100mbit', devices: 4, link: MBIT100, description: '4 devices, 100 Mbit/s + 2 ms' },
].map((s) => ({
  ...s,
  speedFactor: 0.25,
  description: `110M preset, ${s.description}, each device at speed factor 0.25`,
  tensorCosts: {
    ...DEFAULT_TENSOR_COSTS,
    segmentRunMs: DEFAULT_TENSOR_COSTS.segmentRunMs / 0.25,
  },
}));

/** The device preset of a core slowed to `speed` (time stretched by 1 / speed). */
export function benchCorePreset(speed: number): DevicePreset {
  return {
    id: `bench-core-x${speed}`,
    description: `one core of this machine at speed factor ${speed}`,
    memoryBytes: BENCH_CORE.memoryBytes,
    memoryBandwidthBytesPerS: BENCH_CORE.memoryBandwidthBytesPerS * speed,
    computeFlopsPerS: BENCH_CORE.computeFlopsPerS * speed,
    opOverheadMs: BENCH_CORE.opOverheadMs / speed,
    source: 'fitted to the 110M preset in one engine on this machine (29.8 ms/token), slowed',
  };
}

/** The scenario with this id; an unknown id throws, naming the known ones. */
export function findScenario(id: string): PlanScenario {
  const scenario = PLAN_SCENARIOS.find((s) => s.id === id);
  if (!scenario) {
    const known = PLAN_SCENARIOS.map((s) => s.id).join(', ');
    throw new InvalidArgumentError(`unknown scenario "${id}"; known scenarios: ${known}`);
  }
  return scenario;
}

export interface ScenarioCalibration {
  /**
   * The 110M preset's ms per token in one engine on one thread, unemulated, measured on the
   * machine the devices are emulated on: the devices' speed and the fixed CPU costs of a
   * segment run and an all-reduce part scale with it. Default {@link BENCH_CORE_MS_PER_TOKEN}.
   */
  coreMsPerToken?: number;
}

/** How much faster than the fitted core a calibrated core is (1: as fitted). */
function coreScale(calibration: ScenarioCalibration): number {
  const ms = calibration.coreMsPerToken ?? BENCH_CORE_MS_PER_TOKEN;
  if (!(ms > 0)) throw new InvalidArgumentError(`a core's ms per token must be > 0, got ${ms}`);
  return BENCH_CORE_MS_PER_TOKEN / ms;
}

/** A scenario's tensor-parallel costs on a calibrated core (its own when not calibrated). */
export function scenarioTensorCosts(
  id: string,
  calibration: ScenarioCalibration = {},
): TensorCosts {
  const { tensorCosts } = findScenario(id);
  const scale = coreScale(calibration);
  return {
    ...tensorCosts,
    segmentRunMs: tensorCosts.segmentRunMs / scale,
    allReducePartMs: tensorCosts.allReducePartMs / scale,
  };
}

/** The cluster profile of a scenario (plan it with {@link scenarioTensorCosts}). */
export function scenarioCluster(
  id: string,
  createdAt?: string,
  calibration: ScenarioCalibration = {},
): ClusterProfile {
  const scenario = findScenario(id);
  const model = llamaModelSummary(STORIES110M_PRESET_CONFIG, 'stories110m-preset');
  const preset = benchCorePreset(scenario.speedFactor * coreScale(calibration));
  const devices = Array.from({ length: scenario.devices }, (_, i) => ({
    name: `dev-${i + 1}`,
    preset,
  }));
  return clusterFromPresets(model, devices, scenario.link, createdAt);
}
