/**
 * Federated averaging of LoRA adapters whose owners may train at different ranks. An owner
 * of rank r ≤ R trains the first r rows of every A [R, in] and the first r columns of every
 * B [out, R] (HetLoRA's truncation), with alpha scaled so its update keeps the global
 * scale. The aggregate is FedAvg on the owners' changes: each owner's change to the values
 * it trained (zero elsewhere), weighted by its examples, added to the global adapter.
 */
import { InvalidArgumentError, type LlamaConfig } from '@swarmbee/core';
import { type LoraAdapter, loraModules, loraShapes, loraTensor } from '@swarmbee/model';

/** Where a rank-r tensor's values sit in its rank-R tensor: a row block of A, a column block of B. */
function rankIndex(kind: 'a' | 'b', dims: [number, number], rank: number): (i: number) => number {
  // A [R, in]: the first r rows are the first r·in values, in place.
  if (kind === 'a') return (i) => i;
  // B [out, R] → [out, r]: value (o, j) of the truncated tensor is (o, j) of the full one.
  const full = dims[1];
  return (i) => Math.floor(i / rank) * full + (i % rank);
}

function layerOf(name: string): number {
  return Number(/^layers\.(\d+)\./.exec(name)![1]);
}

function* tensorsOf(adapter: LoraAdapter, config: LlamaConfig) {
  for (const module of loraModules(adapter.spec, config)) {
    const shapes = loraShapes(module);
    yield { name: loraTensor.a(module.layer, module.target), kind: 'a' as const, dims: shapes.a };
    yield { name: loraTensor.b(module.layer, module.target), kind: 'b' as const, dims: shapes.b };
  }
}

/**
 * The adapter at rank `rank` ≤ its own: the first rows of A and columns of B, alpha scaled
 * so alpha / rank (or alpha / √rank with rsLoRA) is unchanged.
 */
export function truncateRank(adapter: LoraAdapter, rank: number, config: LlamaConfig): LoraAdapter {
  const full = adapter.spec.rank;
  if (!Number.isInteger(rank) || rank < 1 || rank > full)
    throw new InvalidArgumentError(`a rank-${full} adapter truncates to 1..${full}, not ${rank}`);
  if (rank === full) return adapter;
  const tensors = new Map<string, Float32Array>();
  for (const { name, kind, dims } of tensorsOf(adapter, config)) {
    const values = adapter.tensors.get(name)!;
    const at = rankIndex(kind, dims, rank);
    const size = kind === 'a' ? rank * dims[1] : dims[0] * rank;
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = values[at(i)]!;
    tensors.set(name, out);
  }
  const ratio = rank / full;
  const alpha = adapter.spec.rsLora
    ? adapter.spec.alpha * Math.sqrt(ratio)
    : adapter.spec.alpha * ratio;
  return { ...adapter, spec: { ...adapter.spec, rank, alpha }, tensors };
}

export interface OwnerUpdate {
  /** The owner's adapter after its round, at the rank it trained (≤ the global rank). */
  adapter: LoraAdapter;
  /** Its training records: FedAvg's weight. */
  examples: number;
}

/**
 * FedAvg: global + Σ_k (n_k / N) (w_k − global) over the values each owner trained,
 * summed in float64 (N over the owners that trained the tensor's layer: one that pruned it
 * has no say in it). With every owner at the global rank this is the examples-weighted
 * mean of their adapters.
 */
export function federatedAverage(
  global: LoraAdapter,
  updates: readonly OwnerUpdate[],
  config: LlamaConfig,
): LoraAdapter {
  if (updates.length === 0) throw new InvalidArgumentError('a round needs at least one update');
  const tensors = new Map<string, Float32Array>();
  for (const { name, kind, dims } of tensorsOf(global, config)) {
    const base = global.tensors.get(name)!;
    const sum = new Float64Array(base.length);
    // An owner that trained with a layer pruned has no update for its tensors: the layer's
    // average is over the owners that trained it.
    const trained = updates.filter((u) => u.adapter.spec.layers.includes(layerOf(name)));
    const total = trained.reduce((s, u) => s + u.examples, 0);
    for (const { adapter, examples } of trained) {
      const local = adapter.tensors.get(name);
      const rank = adapter.spec.rank;
      const size = kind === 'a' ? rank * dims[1] : dims[0] * rank;
      if (local?.length !== size)
        throw new InvalidArgumentError(
          `an owner's ${name} has ${local?.length ?? 'no'} values; rank ${rank} needs ${size}`,
        );
      const at = rankIndex(kind, dims, rank);
      const weight = examples / total;
      for (let i = 0; i < size; i++) {
        const j = at(i);
        sum[j] = sum[j]! + weight * (local[i]! - base[j]!);
      }
    }
    const next = new Float32Array(base.length);
    for (let i = 0; i < next.length; i++) next[i] = base[i]! + sum[i]!;
    tensors.set(name, next);
  }
  return { ...global, tensors };
}
