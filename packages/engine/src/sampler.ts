/**
 * Next-token sampling on the last stage, as llama2.c's run.c does it (greedy
 * argmax at temperature 0; otherwise temperature, softmax, optional top-k, then
 * nucleus sampling with run.c's xorshift random stream), so a seed reproduces
 * run.c's choices for the same logits.
 */
import type { SamplingParams } from '@swarmbee/core';

/** run.c's xorshift64* generator: `random_u32` / `random_f32`. */
export class XorShiftRandom {
  #state: bigint;

  constructor(seed: number) {
    this.#state = BigInt(seed) & 0xffffffffffffffffn;
    // A zero state would stay zero forever.
    if (this.#state === 0n) this.#state = 0x2545f4914f6cdd1dn;
  }

  nextU32(): number {
    let s = this.#state;
    s ^= s >> 12n;
    s ^= (s << 25n) & 0xffffffffffffffffn;
    s ^= s >> 27n;
    this.#state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 32n);
  }

  /** Uniform in [0, 1) with 24 bits, as run.c's `random_f32`. */
  nextF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

export interface Sample {
  token: number;
  /** Log-probability of the token under the model's untempered distribution. */
  logprob: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

function logSoftmaxAt(logits: Float32Array, index: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return logits[index]! - max - Math.log(sum);
}

/** Samples tokens for one sequence; keeps its random stream between steps. */
export class Sampler {
  readonly #params: SamplingParams;
  readonly #random: XorShiftRandom;

  constructor(params: SamplingParams) {
    this.#params = params;
    this.#random = new XorShiftRandom(params.seed ?? Date.now());
  }

  sample(logits: Float32Array, withLogprob = false): Sample {
    const token = this.#pick(logits);
    return { token, logprob: withLogprob ? logSoftmaxAt(logits, token) : 0 };
  }

  #pick(logits: Float32Array): number {
    const { temperature, topK, topP } = this.#params;
    if (temperature === 0) return argmax(logits);
    const probs = new Float32Array(logits.length);
    let max = Number.NEGATIVE_INFINITY;
    for (const v of logits) max = Math.max(max, v / temperature);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      probs[i] = Math.exp(logits[i]! / temperature - max);
      sum += probs[i]!;
    }
    for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
    if (topK > 0 && topK < probs.length) keepTopK(probs, topK);
    const coin = this.#random.nextF32();
    return topP < 1 ? sampleTopP(probs, topP, coin) : sampleMultinomial(probs, coin);
  }
}

/** Zeroes all but the k most likely tokens and renormalises. */
function keepTopK(probs: Float32Array, k: number): void {
  const threshold = Float32Array.from(probs).sort().reverse()[k - 1]!;
  let kept = 0;
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! >= threshold && kept < k) {
      kept++;
      sum += probs[i]!;
    } else {
      probs[i] = 0;
    }
  }
  for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
}

function sampleMultinomial(probs: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < probs.length; i++) {
    cdf += probs[i]!;
    if (coin < cdf) return i;
  }
  return probs.length - 1;
}

/** run.c's `sample_topp`: the smallest set whose probabilities exceed `topP`, sampled by `coin`. */
function sampleTopP(probs: Float32Array, topP: number, coin: number): number {
  // Tokens below this cannot be in the nucleus; skipping them keeps the sort short.
  const cutoff = (1 - topP) / (probs.length - 1);
  const candidates: number[] = [];
  for (let i = 0; i < probs.length; i++) if (probs[i]! >= cutoff) candidates.push(i);
  candidates.sort((a, b) => probs[b]! - probs[a]!);
  let cumulative = 0;
  let last = candidates.length - 1;
  for (let i = 0; i < candidates.length; i++) {
    cumulative += probs[candidates[i]!]!;
    if (cumulative > topP) {
      last = i;
      break;
    }
  }
  const r = coin * cumulative;
  let cdf = 0;
  for (let i = 0; i <= last; i++) {
    cdf += probs[candidates[i]!]!;
    if (r < cdf) return candidates[i]!;
  }
  return candidates[last]!;
}
