/** Where the benchmarks pin local-cluster workers (`LocalCluster`'s `pinCores`) when their speeds are emulated. */

/**
 * Cores for workers slowed by speed factors (`--speed-factors`): a worker at speed s computes
 * for s of its time and idles for the rest, and each is profiled alone, so the predictions
 * assume it has its core to itself. The busiest go first, each onto the core with the least
 * load so far: on 2 cores, speeds 1, 0.5, 0.25 give the first worker a core of its own and
 * put the other two (0.75 of a core) on the second. The coordinator is left free: held to a
 * busy core it becomes the bottleneck.
 */
export function coresBySpeed(speeds: readonly number[]): (index: number, cores: number) => number {
  return (index, cores) => {
    const load = new Array<number>(cores).fill(0);
    const core = new Array<number>(speeds.length).fill(0);
    const order = speeds
      .map((speed, i) => ({ speed, i }))
      .sort((a, b) => b.speed - a.speed || a.i - b.i);
    for (const { speed, i } of order) {
      const least = load.indexOf(Math.min(...load));
      core[i] = least;
      load[least]! += speed;
    }
    return core[index] ?? 0;
  };
}
