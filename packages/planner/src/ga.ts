/**
 * A genetic algorithm over the random-key space (search-space.ts): tournament
 * selection, uniform crossover, Gaussian mutation, elitism. For clusters too varied for
 * the exact DP (tens of distinct devices); seeded, so runs repeat exactly.
 */

import type { Evaluation } from './plan-evaluation.js';
import { Rng } from './rng.js';
import { POLISH_SHARE, SearchTally, seedGenomes } from './search-seeds.js';
import { genomeLength, type SearchSpace } from './search-space.js';

export interface SearchOptions {
  seed: number;
  /** Fitness evaluations to spend. */
  evaluations: number;
}

export interface SearchOutcome {
  /** Best plan that fits; undefined when none was found. */
  best: Evaluation | undefined;
  evaluations: number;
}

const POPULATION = 40;
const TOURNAMENT = 3;
const ELITES = 2;
const CROSSOVER_RATE = 0.9;
const MUTATION_SIGMA = 0.15;

interface Individual {
  genome: Float64Array;
  fitness: Evaluation;
}

export function planGa(space: SearchSpace, options: SearchOptions): SearchOutcome {
  const rng = new Rng(options.seed);
  const tally = new SearchTally(space);
  const searchBudget = Math.floor(options.evaluations * (1 - POLISH_SHARE));
  const D = genomeLength(space);
  const mutationRate = Math.max(1 / D, 0.02);
  const make = (genome: Float64Array): Individual => ({ genome, fitness: tally.evaluate(genome) });
  const random = () => {
    const g = new Float64Array(D);
    for (let i = 0; i < D; i++) g[i] = rng.next();
    return g;
  };
  let population = seedGenomes(space).slice(0, POPULATION).map(make);
  while (population.length < POPULATION) population.push(make(random()));
  const byFitness = (x: Individual, y: Individual) => tally.compare(x.fitness, y.fitness);
  const pick = () => {
    let winner = population[rng.int(population.length)]!;
    for (let i = 1; i < TOURNAMENT; i++) {
      const rival = population[rng.int(population.length)]!;
      if (byFitness(rival, winner) < 0) winner = rival;
    }
    return winner;
  };
  while (tally.evaluations + POPULATION - ELITES <= searchBudget) {
    population.sort(byFitness);
    const next = population.slice(0, ELITES);
    while (next.length < POPULATION) {
      const mother = pick().genome;
      const father = pick().genome;
      const child = new Float64Array(mother);
      if (rng.next() < CROSSOVER_RATE) {
        for (let i = 0; i < D; i++) if (rng.next() < 0.5) child[i] = father[i]!;
      }
      for (let i = 0; i < D; i++) {
        if (rng.next() < mutationRate) {
          child[i] = Math.min(1 - 1e-9, Math.max(0, child[i]! + MUTATION_SIGMA * rng.normal()));
        }
      }
      next.push(make(child));
    }
    population = next;
  }
  tally.polishBest(options.evaluations);
  return { best: tally.best, evaluations: tally.evaluations };
}
