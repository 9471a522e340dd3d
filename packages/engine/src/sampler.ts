/**
 * Next-token sampling on the last stage, as llama2.c's run.c does it (greedy
 * argmax at temperature 0; otherwise temperature, softmax, optional top-k, then
 * nucleus sampling with run.c's xorshift random stream), so a seed reproduces
 * run.c's choices for the same logits. Nothing sorts the vocabulary: top-k finds its
 * threshold by quickselect, top-p takes candidates off a heap until the nucleus is full.
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

// Indexed loops throughout: on a 128k vocabulary `for … of` over a typed array cost 20 × more.

function maxOf(values: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  return max;
}

function logSoftmaxAt(logits: Float32Array, index: number): number {
  const max = maxOf(logits);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return logits[index]! - max - Math.log(sum);
}

/** Samples tokens for one sequence; keeps its random stream between steps. */
export class Sampler {
  readonly #params: SamplingParams;
  readonly #random: XorShiftRandom;
  /** Per-step buffers, reused: the probabilities and top-k's selection scratch. */
  #probs = new Float32Array(0);
  #scratch = new Float32Array(0);

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
    if (this.#probs.length !== logits.length) {
      this.#probs = new Float32Array(logits.length);
      this.#scratch = new Float32Array(logits.length);
    }
    // The largest tempered logit; dividing each logit (not the max) keeps run.c's rounding.
    const max = maxOf(logits) / temperature;
    if (topK > 0 && topK < logits.length) return this.#pickTopK(logits, max);
    const probs = this.#probs;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      const p = Math.exp(logits[i]! / temperature - max);
      probs[i] = p;
      sum += p;
    }
    for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
    const coin = this.#random.nextF32();
    return topP < 1 ? sampleTopP(probs, topP, coin) : sampleMultinomial(probs, coin);
  }

  /**
   * Top-k: the k largest logits are the k most likely tokens, so they are selected on the
   * logits and only they are exponentiated — the softmax's normaliser cancels when they are
   * renormalised. Ties at the threshold keep the lowest ids; candidates stay in id order.
   */
  #pickTopK(logits: Float32Array, max: number): number {
    const { temperature, topK, topP } = this.#params;
    const threshold = kthLargest(logits, topK, this.#scratch);
    const ids: number[] = [];
    for (let i = 0; i < logits.length && ids.length < topK; i++)
      if (logits[i]! >= threshold) ids.push(i);
    const probs = new Float32Array(ids.length);
    let sum = 0;
    ids.forEach((id, j) => {
      probs[j] = Math.exp(logits[id]! / temperature - max);
      sum += probs[j]!;
    });
    for (let j = 0; j < probs.length; j++) probs[j]! /= sum;
    const coin = this.#random.nextF32();
    const j =
      topP < 1 ? sampleTopP(probs, topP, coin, logits.length) : sampleMultinomial(probs, coin);
    return ids[j]!;
  }
}

/**
 * The k-th largest value, by quickselect over a copy: expected O(vocab), no sort.
 * `scratch` is reused between steps.
 */
function kthLargest(values: Float32Array, k: number, scratch: Float32Array): number {
  const a = scratch;
  a.set(values);
  let low = 0;
  let high = a.length - 1;
  const target = k - 1;
  while (low < high) {
    // Median of three as the pivot keeps sorted or constant input from going quadratic.
    const mid = (low + high) >>> 1;
    const pivot = Math.max(
      Math.min(a[low]!, a[mid]!),
      Math.min(Math.max(a[low]!, a[mid]!), a[high]!),
    );
    let i = low;
    let j = high;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const swap = a[i]!;
        a[i] = a[j]!;
        a[j] = swap;
        i++;
        j--;
      }
    }
    if (target <= j) high = j;
    else if (target >= i) low = i;
    else return a[target]!;
  }
  return a[target]!;
}

function sampleMultinomial(probs: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < probs.length; i++) {
    cdf += probs[i]!;
    if (coin < cdf) return i;
  }
  return probs.length - 1;
}

/**
 * run.c's `sample_topp`: the smallest set of most likely tokens whose probabilities exceed
 * `topP`, sampled by `coin`. The candidates come off a max-heap one at a time, most likely
 * first, only until the nucleus is complete, so the vocabulary is never sorted.
 */
function sampleTopP(probs: Float32Array, topP: number, coin: number, vocab = probs.length): number {
  // Tokens below this cannot be in the nucleus (run.c's cutoff, over the whole vocabulary).
  const cutoff = (1 - topP) / (vocab - 1);
  const heap: number[] = [];
  for (let i = 0; i < probs.length; i++) if (probs[i]! >= cutoff) heap.push(i);
  // Higher probability first; on a tie the lower id, so the order is total.
  const before = (a: number, b: number) =>
    probs[a]! > probs[b]! || (probs[a] === probs[b] && a < b);
  const siftDown = (at: number) => {
    for (;;) {
      const left = 2 * at + 1;
      if (left >= heap.length) return;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, heap[at]!)) return;
      [heap[at], heap[child]] = [heap[child]!, heap[at]!];
      at = child;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  const nucleus: number[] = [];
  let cumulative = 0;
  while (heap.length > 0) {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      siftDown(0);
    }
    nucleus.push(top);
    cumulative += probs[top]!;
    if (cumulative > topP) break;
  }
  const r = coin * cumulative;
  let cdf = 0;
  for (const id of nucleus) {
    cdf += probs[id]!;
    if (r < cdf) return id;
  }
  return nucleus.at(-1)!;
}
