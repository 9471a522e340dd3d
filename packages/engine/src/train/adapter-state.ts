/**
 * A stage's trainable state, apart from how its gradients are computed: the adapter
 * tensors, the gradients accumulated since the last update, AdamW's moments and step,
 * and an update prepared but not yet committed.
 */
import { InvalidArgumentError, TrainingDivergedError } from '@swarmbee/core';
import {
  type AdamWMoments,
  type AdamWOptions,
  adamwStep,
  DEFAULT_ADAMW,
  squaredNorm,
} from './adamw.js';
import type { TrainingStageState, TrainingUpdate } from './training-stage.js';

interface Tensor {
  value: Float32Array;
  grad: Float32Array;
  moments: AdamWMoments;
  /** The starting values, for FedProx's proximal term (when μ > 0). */
  anchor?: Float32Array;
}

type Prepared = Map<string, Pick<Tensor, 'value' | 'moments'>>;

export class AdapterState {
  readonly #tensors = new Map<string, Tensor>();
  readonly #optimizer: Required<AdamWOptions>;
  #step = 0;
  #prepared: Prepared | undefined;

  /** `initial` holds at least the tensors of `params`, each of its size. */
  constructor(
    params: readonly { name: string; dims: [number, number] }[],
    initial: Readonly<Record<string, Float32Array>>,
    optimizer: AdamWOptions = {},
    readonly where = 'the stage',
  ) {
    this.#optimizer = { ...DEFAULT_ADAMW, ...optimizer };
    for (const { name, dims } of params) {
      const size = dims[0] * dims[1];
      const values = initial[name];
      if (values?.length !== size)
        throw new InvalidArgumentError(
          `adapter tensor ${name} needs ${size} values [${dims}], got ${values?.length ?? 'none'}`,
        );
      this.#tensors.set(name, {
        value: Float32Array.from(values),
        grad: new Float32Array(size),
        moments: { expAvg: new Float32Array(size), expAvgSq: new Float32Array(size) },
        ...(this.#optimizer.proximalMu > 0 ? { anchor: Float32Array.from(values) } : {}),
      });
    }
  }

  /** The current values of a tensor (fed to the graphs as they are; updates replace the array). */
  value(name: string): Float32Array {
    return this.#tensors.get(name)!.value;
  }

  /** Adds one micro-batch's gradients (by tensor name) to the accumulated ones. */
  accumulate(gradient: (name: string) => Float32Array): void {
    for (const [name, tensor] of this.#tensors) {
      const grad = gradient(name);
      for (let i = 0; i < grad.length; i++) tensor.grad[i]! += grad[i]!;
    }
  }

  squaredNorm(): number {
    let sum = 0;
    for (const tensor of this.#tensors.values()) sum += squaredNorm(tensor.grad);
    return sum;
  }

  gradients(): Record<string, Float32Array> {
    return Object.fromEntries([...this.#tensors].map(([name, t]) => [name, t.grad.slice()]));
  }

  /** Computes the AdamW step into new arrays; throws (keeping nothing) if a value would not be finite. */
  prepare(update: TrainingUpdate): void {
    this.#prepared = undefined;
    const step = this.#step + 1;
    const prepared: Prepared = new Map();
    for (const [name, tensor] of this.#tensors) {
      const next = {
        value: tensor.value.slice(),
        moments: {
          expAvg: tensor.moments.expAvg.slice(),
          expAvgSq: tensor.moments.expAvgSq.slice(),
        },
      };
      adamwStep(
        next.value,
        tensor.grad,
        next.moments,
        step,
        update.learningRate,
        update.gradientScale,
        this.#optimizer,
        tensor.anchor,
      );
      if (!next.value.every(Number.isFinite) || !next.moments.expAvgSq.every(Number.isFinite))
        throw new TrainingDivergedError(`${this.where}: the update would make ${name} non-finite`);
      prepared.set(name, next);
    }
    this.#prepared = prepared;
  }

  /** Applies the prepared update and clears the gradients. */
  commit(): void {
    const prepared = this.#prepared;
    if (!prepared) throw new InvalidArgumentError('no prepared update to commit');
    for (const [name, tensor] of this.#tensors) {
      const next = prepared.get(name)!;
      tensor.value = next.value;
      tensor.moments = next.moments;
      tensor.grad.fill(0);
    }
    this.#prepared = undefined;
    this.#step++;
  }

  /** Drops the accumulated gradients and a prepared update. */
  discard(): void {
    this.#prepared = undefined;
    for (const tensor of this.#tensors.values()) tensor.grad.fill(0);
  }

  snapshot(): TrainingStageState {
    const tensors: TrainingStageState['tensors'] = {};
    for (const [name, t] of this.#tensors)
      tensors[name] = {
        value: t.value.slice(),
        expAvg: t.moments.expAvg.slice(),
        expAvgSq: t.moments.expAvgSq.slice(),
      };
    return { step: this.#step, tensors };
  }

  load(state: TrainingStageState): void {
    for (const [name, t] of this.#tensors) {
      const saved = state.tensors[name];
      const ok = [saved?.value, saved?.expAvg, saved?.expAvgSq].every(
        (a) => a?.length === t.value.length,
      );
      if (!ok)
        throw new InvalidArgumentError(
          `the state has no tensor ${name} of ${t.value.length} values`,
        );
    }
    for (const [name, t] of this.#tensors) {
      const saved = state.tensors[name]!;
      t.value = Float32Array.from(saved.value);
      t.moments = {
        expAvg: Float32Array.from(saved.expAvg),
        expAvgSq: Float32Array.from(saved.expAvgSq),
      };
      t.grad.fill(0);
    }
    this.#step = state.step;
    this.#prepared = undefined;
  }
}
