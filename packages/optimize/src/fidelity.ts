/**
 * Fidelity of a model against a reference, measured as llama.cpp's `perplexity
 * --kl-divergence` does: run the same corpus through both with teacher forcing, and at
 * every predicted position compare the next-token distributions — the KL divergence of
 * the candidate's from the reference's, and whether their most likely tokens agree —
 * plus each model's perplexity on the corpus text.
 */
import { ModelMismatchError } from '@swarmbee/core';
import type { Pipeline } from '@swarmbee/engine';
import type { ProgressFn } from '@swarmbee/model';
import type { Corpus } from './corpus.js';

export interface FidelityFigures {
  /** Mean KL(P_reference ‖ P_candidate) over predicted positions, in nats per token. */
  kl: number;
  /** 99th percentile of the per-position KL, nats. */
  klP99: number;
  /** Share of positions where both models' most likely next token is the same, 0..1. */
  top1: number;
  /** Perplexity of the corpus under the candidate. */
  perplexity: number;
  /** Perplexity of the corpus under the reference. */
  referencePerplexity: number;
  /** Predicted positions compared. */
  positions: number;
}

let nextSequence = 0;

/** Logits at every position of a window, `[T, vocab]`, from one prefill with teacher forcing. */
export async function teacherForcedLogits(
  pipeline: Pipeline,
  window: readonly number[],
): Promise<Float32Array> {
  const seqId = `fidelity-${process.pid}-${nextSequence++}`;
  try {
    const result = await pipeline.step({
      rows: [{ seqId, start: 0, count: window.length }],
      tokens: BigInt64Array.from(window, BigInt),
      logits: 'all',
    });
    return result.logits!;
  } finally {
    await pipeline.release([seqId]);
  }
}

/** Natural-log softmax of `logits[from, from + n)` into `out`, in float64 for the sums. */
function logSoftmax(logits: Float32Array, from: number, n: number, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[from + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[from + i]! - max);
  const shift = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[from + i]! - shift;
}

function argmax(values: ArrayLike<number>, from: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[from + i]! > values[from + best]!) best = i;
  return best;
}

/**
 * The reference model's next-token log-probabilities over a corpus, kept so any number
 * of candidates can be compared against one run of the reference
 * (predicted positions × vocabulary floats).
 */
export class ReferenceDistribution {
  private constructor(
    readonly corpus: Corpus,
    readonly vocabSize: number,
    /** Per window: `[T − 1, vocab]` log-probabilities. */
    private readonly logProbs: Float32Array[],
    private readonly nll: number,
  ) {}

  static async measure(
    pipeline: Pipeline,
    corpus: Corpus,
    progress?: ProgressFn,
  ): Promise<ReferenceDistribution> {
    const vocab = pipeline.info.vocabSize;
    const row = new Float64Array(vocab);
    const logProbs: Float32Array[] = [];
    let nll = 0;
    for (const [w, window] of corpus.windows.entries()) {
      const logits = await teacherForcedLogits(pipeline, window);
      const positions = window.length - 1;
      const kept = new Float32Array(positions * vocab);
      for (let p = 0; p < positions; p++) {
        logSoftmax(logits, p * vocab, vocab, row);
        kept.set(row, p * vocab);
        nll -= row[window[p + 1]!]!;
      }
      logProbs.push(kept);
      progress?.({ phase: 'reference', done: w + 1, total: corpus.windows.length, unit: 'steps' });
    }
    return new ReferenceDistribution(corpus, vocab, logProbs, nll);
  }

  get perplexity(): number {
    return Math.exp(this.nll / this.corpus.predictions);
  }

  /** The candidate's fidelity against this reference, on the same corpus. */
  async compare(pipeline: Pipeline, progress?: ProgressFn): Promise<FidelityFigures> {
    const vocab = this.vocabSize;
    if (pipeline.info.vocabSize !== vocab) {
      throw new ModelMismatchError(
        `the candidate has a vocabulary of ${pipeline.info.vocabSize} tokens, the reference ${vocab}: they are not the same model`,
      );
    }
    const row = new Float64Array(vocab);
    const kls: number[] = [];
    let agree = 0;
    let nll = 0;
    for (const [w, window] of this.corpus.windows.entries()) {
      const logits = await teacherForcedLogits(pipeline, window);
      const reference = this.logProbs[w]!;
      for (let p = 0; p < window.length - 1; p++) {
        logSoftmax(logits, p * vocab, vocab, row);
        const from = p * vocab;
        let kl = 0;
        for (let i = 0; i < vocab; i++) {
          const lp = reference[from + i]!;
          kl += Math.exp(lp) * (lp - row[i]!);
        }
        // Rounding can leave a hair below zero where the two are identical.
        kls.push(Math.max(0, kl));
        if (argmax(reference, from, vocab) === argmax(row, 0, vocab)) agree++;
        nll -= row[window[p + 1]!]!;
      }
      progress?.({
        phase: 'compare',
        done: w + 1,
        total: this.corpus.windows.length,
        unit: 'steps',
      });
    }
    kls.sort((a, b) => a - b);
    const positions = kls.length;
    return {
      kl: kls.reduce((a, b) => a + b, 0) / positions,
      klP99: kls[Math.min(positions - 1, Math.floor(0.99 * positions))]!,
      top1: agree / positions,
      perplexity: Math.exp(nll / positions),
      referencePerplexity: this.perplexity,
      positions,
    };
  }
}
