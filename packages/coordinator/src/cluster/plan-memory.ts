/**
 * The plans the coordinator deployed, remembered by the set of workers they were chosen
 * for and the planning options, in `<cache dir>/plans/<model hash>.json`. The same
 * workers get the same plan again — after a loss and return, or a coordinator restart —
 * without profiling, so every worker finds its shard in its cache and nothing is sent.
 * Link and compute measurements move by 10-20 % between runs on shared machines; planning
 * afresh from them could pick another cut for no real change. `POST /swarmbee/replan`
 * always plans afresh (and remembers the result).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Plan } from '@swarmbee/core';
import type { PlanResult } from '@swarmbee/planner';
import type { PlanningOptions } from './planning.js';

/** Most worker sets remembered per model; the oldest is forgotten first. */
export const PLAN_MEMORY_ENTRIES = 16;

interface Entry {
  /** Worker names the plan was chosen among, sorted. */
  workers: string[];
  /** The planning options, as a stable key. */
  planning: string;
  plan: Plan | PlanResult;
}

/** The planning options as a key: the same options, in any order, give the same key. */
export function planningKey(options: PlanningOptions): string {
  const sorted = (value: unknown): unknown =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>)
            .filter(([, v]) => v !== undefined)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, v]) => [k, sorted(v)]),
        )
      : value;
  return JSON.stringify(sorted(options));
}

/** Whether two plans run the same layers on the same workers, split the same way. */
export function samePlan(a: Plan, b: Plan): boolean {
  return (
    a.modelHash === b.modelHash &&
    a.stages.length === b.stages.length &&
    a.stages.every((s, i) => {
      const t = b.stages[i]!;
      return (
        s.device === t.device &&
        s.layerStart === t.layerStart &&
        s.layerEnd === t.layerEnd &&
        JSON.stringify(s.tensor ?? null) === JSON.stringify(t.tensor ?? null)
      );
    })
  );
}

export class PlanMemory {
  readonly #path: string;
  #entries?: Entry[];

  constructor(
    cacheDir: string,
    readonly modelHash: string,
  ) {
    this.#path = join(cacheDir, 'plans', `${modelHash}.json`);
  }

  /** The plan last deployed for exactly these workers with these options, if any. */
  async recall(
    workers: readonly string[],
    planning: PlanningOptions,
  ): Promise<Plan | PlanResult | undefined> {
    const entries = await this.#load();
    const names = [...workers].sort().join('\n');
    const key = planningKey(planning);
    return entries.find((e) => e.workers.join('\n') === names && e.planning === key)?.plan;
  }

  /** Remembers `plan` for these workers and options (written atomically). */
  async remember(
    workers: readonly string[],
    planning: PlanningOptions,
    plan: Plan | PlanResult,
  ): Promise<void> {
    const sorted = [...workers].sort();
    const key = planningKey(planning);
    const others = (await this.#load()).filter(
      (e) => e.workers.join('\n') !== sorted.join('\n') || e.planning !== key,
    );
    this.#entries = [{ workers: sorted, planning: key, plan }, ...others].slice(
      0,
      PLAN_MEMORY_ENTRIES,
    );
    await mkdir(join(this.#path, '..'), { recursive: true });
    const staging = `${this.#path}.${process.pid}.tmp`;
    await writeFile(staging, `${JSON.stringify(this.#entries, null, 1)}\n`);
    await rename(staging, this.#path);
  }

  async #load(): Promise<Entry[]> {
    if (this.#entries) return this.#entries;
    try {
      const parsed = JSON.parse(await readFile(this.#path, 'utf8')) as unknown;
      this.#entries = Array.isArray(parsed) ? (parsed as Entry[]).filter(isEntry) : [];
    } catch {
      // None yet, or unreadable: plan afresh.
      this.#entries = [];
    }
    return this.#entries;
  }
}

function isEntry(value: Entry): boolean {
  return (
    Array.isArray(value?.workers) &&
    typeof value.planning === 'string' &&
    Array.isArray(value.plan?.stages) &&
    value.plan.stages.every((s) => typeof s.device === 'string')
  );
}
