/**
 * A deployment configuration: for every layer of the fp32 model, its precision or its
 * removal. What it does to fidelity, and to the cluster profile the planner plans over.
 *
 * **Fidelity model (additive).** Each layer's change is measured alone on the reference
 * corpus — that layer quantized to int8 (or int4), or dropped, every other layer fp32 —
 * giving a KL divergence from the fp32 model and a top-1 agreement with it. A
 * configuration is predicted to have
 *
 *   KL ≈ Σ over changed layers of KL(change)
 *
 * — small, independent perturbations of the log-probabilities, whose divergences add to
 * first order. Top-1 disagreements do not add: the positions a perturbation flips are
 * mostly the same near-ties whatever the perturbation, so summing each layer's misses
 * badly overcounts. Measured per-layer figures instead follow 1 − top1 ≈ c·√KL with one
 * constant c across int8, int4 and drops (stories260K: c ≈ 0.55–0.62), so a configuration
 * is predicted to have
 *
 *   1 − top1 ≈ c·√KL(configuration), clamped to [0, 1],
 *
 * with c fitted (least squares through the origin) to the table's own single-layer
 * entries. Interactions (two dropped neighbours, errors compounding through later
 * layers) are not modelled; `swarmbee optimize search` measures its best configurations
 * directly and reports the error.
 *
 * **Timing model.** A quantized layer's decode time is the profile's fp32 time times a
 * per-precision factor, its prefill time likewise; its memory is its real quantized
 * bytes. The factors come from the caller: byte ratios (decode is memory-bound) or a
 * quick measurement of one layer at each precision. A dropped layer costs nothing.
 */
import {
  type ClusterProfile,
  type DecodeTimingGrid,
  InvalidArgumentError,
  type LayerPrecision,
  type OpTiming,
  type PrefillTimingGrid,
} from '@swarmbee/core';

/** What happens to one layer: kept at a precision, or dropped. */
export type LayerChoice = LayerPrecision | 'drop';

/** A configuration: one choice per layer of the fp32 model. */
export type DeploymentConfig = readonly LayerChoice[];

export type QuantizedPrecision = Exclude<LayerPrecision, 'fp32'>;

/** One layer's change measured alone against the fp32 model. */
export interface LayerFidelity {
  /** Mean KL(P_fp32 ‖ P_changed) on the corpus, nats per token. */
  kl: number;
  /** Top-1 agreement with the fp32 model, 0..1. */
  top1: number;
}

/** Per-layer fidelity contributions, measured once per model, corpus and quantization. */
export interface FidelityTable {
  /** Per layer, that layer quantized to each precision. */
  quantized: Partial<Record<QuantizedPrecision, LayerFidelity[]>>;
  /** Per layer, that layer dropped. */
  dropped?: LayerFidelity[];
}

export interface PredictedFidelity {
  kl: number;
  top1: number;
}

/** Decode and prefill time of a layer at a precision, as a multiple of its fp32 time. */
export interface PrecisionTimeScale {
  decode: number;
  prefill: number;
}

/** Per-layer weight bytes and time factors of each quantized precision. */
export interface PrecisionCosts {
  /** Param bytes of each layer at that precision (the fp32 bytes come from the profile). */
  layerBytes: Partial<Record<QuantizedPrecision, readonly number[]>>;
  timeScale: Partial<Record<QuantizedPrecision, PrecisionTimeScale>>;
}

/** Choices written compactly, e.g. `8 8 4 - 4` is read as int8, int8, int4, drop, int4 (`f` is fp32). */
export function configKey(config: DeploymentConfig): string {
  return config
    .map((c) => (c === 'fp32' ? 'f' : c === 'int8' ? '8' : c === 'int4' ? '4' : '-'))
    .join('');
}

/** People's summary of a configuration, e.g. `int4 ×6, int8 ×4, drop 2 (layers 5, 6)`. */
export function describeConfig(config: DeploymentConfig): string {
  const count = (c: LayerChoice) => config.filter((x) => x === c).length;
  const parts: string[] = [];
  for (const c of ['fp32', 'int8', 'int4'] as const)
    if (count(c) > 0) parts.push(`${c} ×${count(c)}`);
  const dropped = config.flatMap((c, l) => (c === 'drop' ? [l] : []));
  if (dropped.length > 0)
    parts.push(
      `drop ${dropped.length} (layer${dropped.length > 1 ? 's' : ''} ${dropped.join(', ')})`,
    );
  return parts.join(', ');
}

const fittedMiss = new WeakMap<FidelityTable, number>();

/**
 * The c of 1 − top1 ≈ c·√KL, fitted to every single-layer entry of the table (least
 * squares through the origin); 0 when the table has no change with any KL.
 */
export function top1MissCoefficient(table: FidelityTable): number {
  let c = fittedMiss.get(table);
  if (c === undefined) {
    const entries = [...Object.values(table.quantized).flat(), ...(table.dropped ?? [])];
    let xy = 0;
    let xx = 0;
    for (const e of entries) {
      if (!e) continue;
      const root = Math.sqrt(Math.max(0, e.kl));
      xy += root * (1 - e.top1);
      xx += root * root;
    }
    c = xx > 0 ? xy / xx : 0;
    fittedMiss.set(table, c);
  }
  return c;
}

/** The predicted fidelity of a configuration (see the module comment). */
export function predictFidelity(table: FidelityTable, config: DeploymentConfig): PredictedFidelity {
  let kl = 0;
  config.forEach((choice, layer) => {
    if (choice === 'fp32') return;
    const entry = choice === 'drop' ? table.dropped?.[layer] : table.quantized[choice]?.[layer];
    if (!entry) {
      throw new InvalidArgumentError(
        `the fidelity table has no figure for layer ${layer} ${choice === 'drop' ? 'dropped' : `at ${choice}`}`,
      );
    }
    kl += entry.kl;
  });
  const miss = top1MissCoefficient(table) * Math.sqrt(kl);
  return { kl, top1: Math.max(0, 1 - miss) };
}

function scaleDecode(grid: DecodeTimingGrid, factor: number): DecodeTimingGrid {
  return { ...grid, ms: grid.ms.map((row) => row.map((v) => v * factor)) };
}

function scalePrefill(grid: PrefillTimingGrid, factor: number): PrefillTimingGrid {
  return { ...grid, ms: grid.ms.map((row) => row.map((v) => v * factor)) };
}

/**
 * The cluster profile of the model a configuration makes: dropped layers gone, each kept
 * layer with its precision's bytes and times. Devices, links, embedding and head unchanged.
 */
export function deploymentCluster(
  cluster: ClusterProfile,
  config: DeploymentConfig,
  costs: PrecisionCosts,
): ClusterProfile {
  const { model } = cluster;
  if (config.length !== model.nLayers) {
    throw new InvalidArgumentError(
      `a configuration needs one choice per layer (${model.nLayers}), got ${config.length}`,
    );
  }
  const kept = config.flatMap((choice, layer) => (choice === 'drop' ? [] : [{ choice, layer }]));
  const layers = kept.map(({ choice, layer }) => {
    const base = model.layers[layer]!;
    if (choice === 'fp32') return { ...base, precision: 'fp32' as const };
    const bytes = costs.layerBytes[choice]?.[layer];
    if (bytes === undefined) {
      throw new InvalidArgumentError(`no byte size given for layer ${layer} at ${choice}`);
    }
    return { ...base, paramBytes: bytes, precision: choice };
  });
  const devices = cluster.devices.map((device) => {
    const timing = device.timing;
    const layerTiming = (layer: number): OpTiming =>
      timing.layers.length === 1 ? timing.layers[0]! : timing.layers[layer]!;
    return {
      ...device,
      timing: {
        ...timing,
        layers: kept.map(({ choice, layer }) => {
          const base = layerTiming(layer);
          if (choice === 'fp32') return base;
          const scale = costs.timeScale[choice];
          if (!scale) throw new InvalidArgumentError(`no time factor given for ${choice}`);
          return {
            decode: scaleDecode(base.decode, scale.decode),
            prefill: scalePrefill(base.prefill, scale.prefill),
          };
        }),
      },
    };
  });
  return {
    ...cluster,
    model: {
      ...model,
      modelHash: `${model.modelHash}:${configKey(config)}`,
      nLayers: kept.length,
      layers,
    },
    devices,
  };
}
