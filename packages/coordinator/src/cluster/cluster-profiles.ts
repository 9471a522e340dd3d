/**
 * The cluster profile the coordinator plans from: measured on request (`swarmbee profile`,
 * or before a plan that needs one), re-measured for some workers by the drift loop, and
 * always carrying the coordinator's own step times once it has served enough to know them.
 */
import {
  type ClusterProfile,
  ClusterUnavailableError,
  type CoordinatorTiming,
} from '@swarmbee/core';
import type { ProgressFn } from '@swarmbee/model';
import { profileFor } from './deployment.js';
import { type ProfileClusterOptions, profileCluster, withRemeasured } from './profiler.js';
import type { WorkerLink } from './worker-link.js';

export interface ClusterProfilesOptions
  extends Omit<ProfileClusterOptions, 'workers' | 'coordinatorUrl' | 'reprofile' | 'progress'> {
  /** The workers connected now. */
  workers: () => WorkerLink[];
  /** Where workers reach the coordinator (known once it listens). */
  coordinatorUrl: () => string;
  /** The coordinator's measured step times, once known. */
  coordinatorTiming: () => CoordinatorTiming | undefined;
  /** Where a measurement shows its progress unless the caller gives its own. */
  progress?: ProgressFn;
}

export class ClusterProfiles {
  readonly #options: ClusterProfilesOptions;
  #current?: ClusterProfile;

  constructor(options: ClusterProfilesOptions) {
    this.#options = options;
  }

  /** The profile planned from, if one was measured. */
  get current(): ClusterProfile | undefined {
    return this.#current;
  }

  /** The profile restricted to these workers, if it covers them all. */
  covering(names: readonly string[]): ClusterProfile | undefined {
    return profileFor(this.#current, new Set(names));
  }

  /** Plans from `profile` from now on. */
  adopt(profile: ClusterProfile): void {
    this.#current = this.#withCoordinatorTiming(profile);
  }

  /** Measures every connected worker and its links (compute profiles are cached by each worker). */
  async measure(
    options: { reprofile?: boolean; progress?: ProgressFn } = {},
  ): Promise<ClusterProfile> {
    const workers = this.#options.workers();
    if (workers.length === 0) throw new ClusterUnavailableError('no workers have joined yet');
    this.adopt(await this.#measure(workers, options.reprofile, options.progress));
    return this.#current as ClusterProfile;
  }

  /**
   * These workers' compute (and their links to the coordinator) measured afresh, merged into
   * the profile planned from, which is returned, not adopted.
   */
  async remeasure(names: readonly string[]): Promise<ClusterProfile> {
    const workers = this.#options.workers().filter((w) => names.includes(w.name));
    if (workers.length === 0) throw new ClusterUnavailableError(`${names.join(', ')} left`);
    const fresh = await this.#measure(workers, true);
    return this.#withCoordinatorTiming(withRemeasured(this.#current ?? fresh, fresh));
  }

  #measure(
    workers: WorkerLink[],
    reprofile: boolean | undefined,
    progress = this.#options.progress,
  ): Promise<ClusterProfile> {
    const o = this.#options;
    return profileCluster({
      model: o.model,
      workers,
      store: o.store,
      coordinatorUrl: o.coordinatorUrl(),
      token: o.token,
      reprofile,
      linkShape: o.linkShape,
      clientTls: o.clientTls,
      timeoutMs: o.timeoutMs,
      deploy: o.deploy,
      log: o.log,
      refused: o.refused,
      ...(progress ? { progress } : {}),
    });
  }

  #withCoordinatorTiming(profile: ClusterProfile): ClusterProfile {
    const coordinator = this.#options.coordinatorTiming();
    return coordinator ? { ...profile, coordinator } : profile;
  }
}
