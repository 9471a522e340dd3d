/** Typed access to a GGUF's metadata; every failure names the file and the key. */
import { basename } from 'node:path';
import { GgufInvalidError, ModelUnsupportedError } from '@swarmbee/core';
import type { GgufFile, GgufValue } from './gguf-file.js';

export class GgufKeys {
  readonly name: string;
  constructor(readonly file: GgufFile) {
    this.name = basename(file.path);
  }

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  raw(key: string): GgufValue | undefined {
    return this.file.metadata.get(key)?.value;
  }

  #invalid(key: string, what: string): never {
    const entry = this.file.metadata.get(key);
    throw new GgufInvalidError(
      `${this.name}: key ${key} is ${entry ? `${entry.type} ${preview(entry.value)}` : 'missing'}; expected ${what}`,
    );
  }

  /** A non-negative integer; `fallback` when absent (required when no fallback). */
  uint(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      this.#invalid(key, 'a non-negative integer');
    return n;
  }

  /** A positive integer; a per-layer array is refused unless all its entries are equal. */
  positive(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (Array.isArray(value)) {
      const distinct = [...new Set(value.map(Number))];
      if (distinct.length === 1 && distinct[0]! > 0) return distinct[0]!;
      throw new ModelUnsupportedError(
        `${this.name}: key ${key} varies per layer (${preview(value)}); the builder gives every layer the same shape`,
      );
    }
    const n = this.uint(key, fallback);
    if (n === 0) this.#invalid(key, 'a positive integer');
    return n;
  }

  number(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.#invalid(key, 'a number');
    return value;
  }

  string(key: string, fallback?: string): string {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string') this.#invalid(key, 'a string');
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.#invalid(key, 'a boolean');
    return value;
  }

  array(key: string): GgufValue[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) this.#invalid(key, 'an array');
    return value;
  }
}

/** A short rendering of a metadata value for messages. */
export function preview(value: GgufValue): string {
  if (Array.isArray(value))
    return `[${value.slice(0, 4).map(preview).join(', ')}${value.length > 4 ? `, … ${value.length} in all` : ''}]`;
  return typeof value === 'string'
    ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
    : String(value);
}
