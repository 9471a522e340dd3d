/**
 * Which layers to drop: the N layers of least Block Influence (ShortGPT), or the run of N
 * consecutive layers whose ends differ least (Gromov et al.). Both candidates are built
 * in memory and measured against the unpruned model on the corpus; the one with the
 * lower KL divergence wins — so "consecutive where that scores better" is decided by the
 * figure users care about, not by the proxy.
 */
import { PruneInvalidError } from '@swarmbee/core';
import type { StageOptions } from '@swarmbee/engine';
import { type LlamaModelDir, type ProgressFn, VariantBuilder } from '@swarmbee/model';
import { blockInfluence, type LayerSimilarity, runInfluence } from './calibration.js';
import type { FidelityFigures, ReferenceDistribution } from './fidelity.js';
import { variantPipeline, withPipeline } from './pipelines.js';

export interface PruneCandidate {
  /** `least-influence`: the N layers of lowest Block Influence; `consecutive`: the best run of N. */
  kind: 'least-influence' | 'consecutive';
  drop: number[];
  /** Summed Block Influence of the layers, or the run's influence (1 − cos across it). */
  influence: number;
  /** Measured against the unpruned model. */
  fidelity: FidelityFigures;
}

export interface PruneChoice {
  chosen: PruneCandidate;
  /** Every candidate measured (one when both ways pick the same layers). */
  candidates: PruneCandidate[];
  /** Per layer of the unpruned model. */
  blockInfluence: number[];
}

export async function choosePrune(
  dir: LlamaModelDir,
  reference: ReferenceDistribution,
  similarity: LayerSimilarity,
  count: number,
  options: { stage?: StageOptions; progress?: ProgressFn } = {},
): Promise<PruneChoice> {
  const n = dir.manifest.config.nLayers;
  if (!Number.isInteger(count) || count < 1 || count >= n) {
    throw new PruneInvalidError(
      `--layers must be between 1 and ${n - 1} for a ${n}-layer model (at least one layer stays), got ${count}`,
    );
  }
  const influence = blockInfluence(similarity);
  const byInfluence = influence
    .map((bi, layer) => ({ bi, layer }))
    .sort((a, b) => a.bi - b.bi || a.layer - b.layer);
  const least = byInfluence
    .slice(0, count)
    .map((x) => x.layer)
    .sort((a, b) => a - b);
  let bestStart = 0;
  for (let start = 1; start + count <= n; start++) {
    if (runInfluence(similarity, start, count) < runInfluence(similarity, bestStart, count))
      bestStart = start;
  }
  const run = Array.from({ length: count }, (_, i) => bestStart + i);
  const proposals: Omit<PruneCandidate, 'fidelity'>[] = [
    {
      kind: 'least-influence',
      drop: least,
      influence: least.reduce((s, l) => s + influence[l]!, 0),
    },
  ];
  if (run.join() !== least.join()) {
    proposals.push({
      kind: 'consecutive',
      drop: run,
      influence: runInfluence(similarity, bestStart, count),
    });
  }
  const builder = new VariantBuilder(dir);
  const candidates: PruneCandidate[] = [];
  for (const [i, proposal] of proposals.entries()) {
    const fidelity = await withPipeline(
      variantPipeline(builder, { drop: proposal.drop }, options.stage),
      (p) => reference.compare(p),
    );
    candidates.push({ ...proposal, fidelity });
    options.progress?.({
      phase: 'prune candidates',
      done: i + 1,
      total: proposals.length,
      unit: 'steps',
    });
  }
  const chosen = candidates.reduce((a, b) => (b.fidelity.kl < a.fidelity.kl ? b : a));
  return { chosen, candidates, blockInfluence: influence };
}
