/**
 * Whether one more sequence fits the deployed stages' KV caches. Each stage reports
 * what it admits (most sequences, KV budget in bytes, bytes per position); a sequence
 * is charged as the engine's arenas charge it: a row of the arena capacity the engine
 * grows to (`arenaCapacity`: from 32 positions, at most the context) for the positions it can reach
 * (prompt + max_tokens - 1), plus its fixed sliding-window rings, and since a micro-batch's rows share one capacity, every
 * live row is charged at the largest live capacity. A sequence that does not fit waits
 * in the scheduler's queue; one that could never fit is refused before it starts.
 */
import { arenaCapacity } from '../kv-cache.js';
import type { StageLimits } from '../stage-engine.js';

/** One stage's limits as a cluster reports them (older workers send no per-row bytes). */
export type AdmissionLimits = Omit<StageLimits, 'kvBytesPerRow'> & {
  kvBytesPerRow?: number;
  /** The stage's index, for refusals. */
  stage: number;
};

export class KvAdmission {
  #stages: readonly AdmissionLimits[] = [];

  constructor(readonly maxSeqLen: number) {}

  /** The deployed stages' limits; an empty list admits everything (nothing reported yet). */
  set(stages: readonly AdmissionLimits[]): void {
    this.#stages = stages;
  }

  /** Arena positions a sequence reaching `positions` occupies. */
  capacity(positions: number): number {
    return arenaCapacity(positions, this.maxSeqLen);
  }

  /** Whether a sequence reaching `positions` fits beside live sequences reaching `live` positions. */
  fits(live: readonly number[], positions: number): boolean {
    const rows = live.length + 1;
    const capacity = this.capacity(Math.max(positions, ...live));
    return this.#stages.every(
      (s) => rows <= s.maxSequences && rows * this.#rowBytes(s, capacity) <= s.kvBudgetBytes,
    );
  }

  /** One row's bytes on a stage at this arena capacity (sliding-window rings are fixed). */
  #rowBytes(stage: AdmissionLimits, capacity: number): number {
    return capacity * stage.kvBytesPerPosition + (stage.kvBytesPerRow ?? 0);
  }

  /** Why a sequence reaching `positions` could never fit, even alone; undefined when it can. */
  refusal(positions: number): string | undefined {
    const bytes = (s: AdmissionLimits) => this.#rowBytes(s, this.capacity(positions));
    const stage = this.#stages.find((s) => bytes(s) > s.kvBudgetBytes);
    if (!stage) return undefined;
    return `a sequence of ${positions} positions needs ${bytes(stage)} bytes of KV cache on stage ${stage.stage}, whose budget is ${stage.kvBudgetBytes} bytes; ask for fewer tokens`;
  }
}
