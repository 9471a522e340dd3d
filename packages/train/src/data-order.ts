/**
 * Which examples each optimizer step trains on, and how they are cut into
 * micro-batches. The examples form an endless stream of epochs, each a seeded
 * shuffle of all of them; step k takes the stream's positions [k·B, (k+1)·B). The
 * order is a function of the seed and k alone, so a resumed run sees exactly the
 * batches an uninterrupted one would.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import type { StepMicroBatch } from '@swarmbee/engine';
import type { TrainingExample } from './dataset.js';

/** A seeded stream of 32-bit random numbers (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class DataOrder {
  readonly #epochs = new Map<number, Int32Array>();

  constructor(
    readonly examples: readonly TrainingExample[],
    readonly batchSize: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new InvalidArgumentError(`batch size must be a positive integer, got ${batchSize}`);
  }

  /** The examples of optimizer step `step` (0-based). */
  step(step: number): TrainingExample[] {
    const n = this.examples.length;
    return Array.from({ length: this.batchSize }, (_, i) => {
      const position = step * this.batchSize + i;
      return this.examples[this.#epoch(Math.floor(position / n))[position % n]!]!;
    });
  }

  /** Epochs begun by the end of `steps` steps (fractional). */
  epochs(steps: number): number {
    return (steps * this.batchSize) / this.examples.length;
  }

  #epoch(epoch: number): Int32Array {
    let order = this.#epochs.get(epoch);
    if (!order) {
      order = Int32Array.from({ length: this.examples.length }, (_, i) => i);
      const next = random((this.seed * 0x9e3779b1 + epoch) >>> 0);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (const old of this.#epochs.keys()) if (old < epoch - 1) this.#epochs.delete(old);
      this.#epochs.set(epoch, order);
    }
    return order;
  }
}

/** Cuts a step's examples into micro-batches of `rows`, each right-padded to its longest row. */
export function toMicroBatches(
  examples: readonly TrainingExample[],
  rows: number,
): StepMicroBatch[] {
  const out: StepMicroBatch[] = [];
  for (let from = 0; from < examples.length; from += rows) {
    const group = examples.slice(from, from + rows);
    const lengths = Int32Array.from(group, (e) => e.ids.length - 1);
    const width = Math.max(...lengths);
    const tokens = new BigInt64Array(group.length * width);
    const targets = new BigInt64Array(group.length * width).fill(-100n);
    group.forEach((example, r) => {
      for (let i = 0; i < lengths[r]!; i++) {
        tokens[r * width + i] = BigInt(example.ids[i]!);
        if (example.targetMask[i]) targets[r * width + i] = BigInt(example.ids[i + 1]!);
      }
    });
    out.push({ lengths, width, tokens, targets });
  }
  return out;
}
