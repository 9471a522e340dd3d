/**
 * Particle swarm optimization over the random-key space (search-space.ts), with
 * Clerc's constriction coefficients. Same decoder, repair and seeding as the GA, so
 * the two differ only in how they move.
 */

import type { SearchOptions, SearchOutcome } from './ga.js';
import type { Evaluation } from './plan-evaluation.js';
import { Rng } from './rng.js';
import { POLISH_SHARE, SearchTally, seedGenomes } from './search-seeds.js';
import { genomeLength, type SearchSpace } from './search-space.js';

const SWARM = 30;
const INERTIA = 0.729;
const PULL = 1.494;
const MAX_SPEED = 0.25;

interface Particle {
  position: Float64Array;
  velocity: Float64Array;
  bestPosition: Float64Array;
  best: Evaluation;
}

export function planPso(space: SearchSpace, options: SearchOptions): SearchOutcome {
  const rng = new Rng(options.seed);
  const tally = new SearchTally(space);
  const searchBudget = Math.floor(options.evaluations * (1 - POLISH_SHARE));
  const D = genomeLength(space);
  const starts = seedGenomes(space).slice(0, SWARM);
  while (starts.length < SWARM) {
    const g = new Float64Array(D);
    for (let i = 0; i < D; i++) g[i] = rng.next();
    starts.push(g);
  }
  const swarm: Particle[] = starts.map((position) => {
    const velocity = new Float64Array(D);
    for (let i = 0; i < D; i++) velocity[i] = (rng.next() - 0.5) * MAX_SPEED;
    const best = tally.evaluate(position);
    return { position, velocity, bestPosition: new Float64Array(position), best };
  });
  let leader = swarm[0]!;
  for (const p of swarm) if (tally.compare(p.best, leader.best) < 0) leader = p;
  let globalPosition = new Float64Array(leader.bestPosition);
  let globalBest = leader.best;
  while (tally.evaluations + SWARM <= searchBudget) {
    for (const p of swarm) {
      for (let i = 0; i < D; i++) {
        const v =
          INERTIA * p.velocity[i]! +
          PULL * rng.next() * (p.bestPosition[i]! - p.position[i]!) +
          PULL * rng.next() * (globalPosition[i]! - p.position[i]!);
        p.velocity[i] = Math.max(-MAX_SPEED, Math.min(MAX_SPEED, v));
        p.position[i] = Math.max(0, Math.min(1 - 1e-9, p.position[i]! + p.velocity[i]!));
      }
      const fitness = tally.evaluate(p.position);
      if (tally.compare(fitness, p.best) < 0) {
        p.best = fitness;
        p.bestPosition.set(p.position);
        if (tally.compare(fitness, globalBest) < 0) {
          globalBest = fitness;
          globalPosition = new Float64Array(p.position);
        }
      }
    }
  }
  tally.polishBest(options.evaluations);
  return { best: tally.best, evaluations: tally.evaluations };
}
