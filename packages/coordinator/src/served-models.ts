/**
 * The models a coordinator answers to by name, and which one a request's `model` picks: the
 * base (`<model>`) and each LoRA adapter served beside it (`<model>:<name>`); or, with one
 * adapter merged into the shards, `<model>:<name>` alone. A name without a `:` is taken as
 * the base model (clients send their own defaults); a `<x>:<y>` that is not served is refused.
 */
import { ModelNotFoundError } from '@swarmbee/core';

/** What a request's `model` resolved to. */
export interface ServedModel {
  /** The id the answer names (`model` in OpenAI's responses). */
  id: string;
  /** The adapter slot the request's rows run with: n ≥ 1 the n-th served adapter, 0 the base. */
  adapter: number;
}

export class ServedModels {
  readonly #base: string;
  readonly #adapters: readonly string[];
  readonly #merged: string | undefined;

  /**
   * `base` is the model's name; `adapters` the names served beside it, in slot order;
   * `merged` the name of an adapter merged into every shard (then the base is not served).
   */
  constructor(base: string, adapters: readonly string[] = [], merged?: string) {
    this.#base = base;
    this.#adapters = adapters;
    this.#merged = merged;
  }

  /** What the cluster serves when a request names no model: the base, or the merged model. */
  get defaultId(): string {
    return this.#merged === undefined ? this.#base : `${this.#base}:${this.#merged}`;
  }

  /** Every id `GET /v1/models` lists, the default first. */
  get ids(): string[] {
    return [this.defaultId, ...this.#adapters.map((name) => `${this.#base}:${name}`)];
  }

  /** @throws ModelNotFoundError (404) for a `<x>:<y>` this coordinator does not serve. */
  resolve(model: string | undefined): ServedModel {
    if (model === undefined || !model.includes(':') || model === this.defaultId)
      return { id: this.defaultId, adapter: 0 };
    const slot = this.#adapters.findIndex((name) => model === `${this.#base}:${name}`);
    if (slot < 0)
      throw new ModelNotFoundError(
        `model ${JSON.stringify(model)} is not served here; this coordinator serves ${this.ids.join(', ')}`,
        { param: 'model' },
      );
    return { id: model, adapter: slot + 1 };
  }
}
