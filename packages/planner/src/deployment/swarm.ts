/**
 * Three seeded searches over random keys — a genome of D genes in [0, 1), each decoded
 * by the problem into a discrete choice — that differ only in how they move:
 *
 * - `ga`: a genetic algorithm (tournament selection, uniform crossover, resampling
 *   mutation, elitism);
 * - `pso`: particle swarm optimization with Clerc's constriction coefficients;
 * - `hybrid`: GA-PSO — a swarm that, after every move, replaces its worse half with
 *   the offspring (crossover and mutation) of its better personal bests, so the swarm's
 *   pull and the GA's recombination work on one population.
 *
 * Every search spends at most `evaluations` fitness calls and starts from the problem's
 * seed genomes, so it never ends worse than the best seed. The same seed gives the same
 * result.
 */
import { Rng } from '../rng.js';

/** Lower `score` is better, compared lexicographically; any feasible genome beats any infeasible one. */
export interface Fitness {
  feasible: boolean;
  score: readonly number[];
}

export interface SwarmProblem {
  dimensions: number;
  evaluate(genome: Float64Array): Fitness;
  /** Genomes every search starts from (known-good configurations). */
  seeds: readonly Float64Array[];
}

export interface SwarmOptions {
  seed: number;
  evaluations: number;
}

export interface SwarmOutcome {
  genome: Float64Array;
  fitness: Fitness;
  evaluations: number;
}

export type SwarmAlgorithm = 'ga' | 'pso' | 'hybrid';

export const SWARM_ALGORITHMS: readonly SwarmAlgorithm[] = ['ga', 'pso', 'hybrid'];

const POPULATION = 24;
const TOURNAMENT = 3;
const ELITES = 2;
const CROSSOVER_RATE = 0.9;
const SWARM = 20;
const INERTIA = 0.729;
const PULL = 1.494;
const MAX_SPEED = 0.3;
const TOP = 1 - 1e-9;

export function compareFitness(a: Fitness, b: Fitness): number {
  if (a.feasible !== b.feasible) return a.feasible ? -1 : 1;
  for (let i = 0; i < Math.max(a.score.length, b.score.length); i++) {
    const d = (a.score[i] ?? 0) - (b.score[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Counts evaluations and remembers the best genome seen. */
class Tally {
  evaluations = 0;
  best: SwarmOutcome | undefined;

  constructor(private readonly problem: SwarmProblem) {}

  evaluate(genome: Float64Array): Fitness {
    const fitness = this.problem.evaluate(genome);
    this.evaluations++;
    if (!this.best || compareFitness(fitness, this.best.fitness) < 0) {
      this.best = { genome: new Float64Array(genome), fitness, evaluations: 0 };
    }
    return fitness;
  }

  outcome(): SwarmOutcome {
    return { ...this.best!, evaluations: this.evaluations };
  }
}

function randomGenome(rng: Rng, dimensions: number): Float64Array {
  const genome = new Float64Array(dimensions);
  for (let i = 0; i < dimensions; i++) genome[i] = rng.next() * TOP;
  return genome;
}

function startingGenomes(problem: SwarmProblem, rng: Rng, count: number): Float64Array[] {
  const genomes: Float64Array[] = problem.seeds.slice(0, count).map((g) => Float64Array.from(g));
  while (genomes.length < count) genomes.push(randomGenome(rng, problem.dimensions));
  return genomes;
}

/** Uniform crossover of two parents, then each gene resampled with probability `rate`. */
function offspring(
  rng: Rng,
  mother: Float64Array,
  father: Float64Array,
  rate: number,
): Float64Array {
  const child = new Float64Array(mother);
  if (rng.next() < CROSSOVER_RATE) {
    for (let i = 0; i < child.length; i++) if (rng.next() < 0.5) child[i] = father[i]!;
  }
  for (let i = 0; i < child.length; i++) if (rng.next() < rate) child[i] = rng.next() * TOP;
  return child;
}

function mutationRate(dimensions: number): number {
  return Math.max(1 / dimensions, 0.05);
}

interface Scored {
  genome: Float64Array;
  fitness: Fitness;
}

function tournament(rng: Rng, pool: readonly Scored[]): Scored {
  let winner = pool[rng.int(pool.length)]!;
  for (let i = 1; i < TOURNAMENT; i++) {
    const rival = pool[rng.int(pool.length)]!;
    if (compareFitness(rival.fitness, winner.fitness) < 0) winner = rival;
  }
  return winner;
}

export function runGa(problem: SwarmProblem, options: SwarmOptions): SwarmOutcome {
  const rng = new Rng(options.seed);
  const tally = new Tally(problem);
  const rate = mutationRate(problem.dimensions);
  let population: Scored[] = startingGenomes(problem, rng, POPULATION).map((genome) => ({
    genome,
    fitness: tally.evaluate(genome),
  }));
  const byFitness = (a: Scored, b: Scored) => compareFitness(a.fitness, b.fitness);
  while (tally.evaluations + POPULATION - ELITES <= options.evaluations) {
    population.sort(byFitness);
    const next = population.slice(0, ELITES);
    while (next.length < POPULATION) {
      const child = offspring(
        rng,
        tournament(rng, population).genome,
        tournament(rng, population).genome,
        rate,
      );
      next.push({ genome: child, fitness: tally.evaluate(child) });
    }
    population = next;
  }
  return tally.outcome();
}

interface Particle {
  position: Float64Array;
  velocity: Float64Array;
  best: Scored;
}

function newParticle(rng: Rng, tally: Tally, position: Float64Array): Particle {
  const velocity = new Float64Array(position.length);
  for (let i = 0; i < velocity.length; i++) velocity[i] = (rng.next() - 0.5) * MAX_SPEED;
  return {
    position,
    velocity,
    best: { genome: new Float64Array(position), fitness: tally.evaluate(position) },
  };
}

/** One constricted PSO move of a particle towards its best and the swarm's best. */
function move(rng: Rng, p: Particle, leader: Float64Array): void {
  for (let i = 0; i < p.position.length; i++) {
    const v =
      INERTIA * p.velocity[i]! +
      PULL * rng.next() * (p.best.genome[i]! - p.position[i]!) +
      PULL * rng.next() * (leader[i]! - p.position[i]!);
    p.velocity[i] = Math.max(-MAX_SPEED, Math.min(MAX_SPEED, v));
    p.position[i] = Math.max(0, Math.min(TOP, p.position[i]! + p.velocity[i]!));
  }
}

function runSwarm(problem: SwarmProblem, options: SwarmOptions, breed: boolean): SwarmOutcome {
  const rng = new Rng(options.seed);
  const tally = new Tally(problem);
  const rate = mutationRate(problem.dimensions);
  const swarm = startingGenomes(problem, rng, SWARM).map((g) => newParticle(rng, tally, g));
  const improve = (p: Particle, fitness: Fitness) => {
    if (compareFitness(fitness, p.best.fitness) < 0)
      p.best = { genome: new Float64Array(p.position), fitness };
  };
  while (tally.evaluations + SWARM <= options.evaluations) {
    const leader = tally.best!.genome;
    for (const p of swarm) {
      move(rng, p, leader);
      improve(p, tally.evaluate(p.position));
    }
    if (!breed || tally.evaluations + SWARM / 2 > options.evaluations) continue;
    // GA step: the worse half restarts from offspring of the better personal bests.
    swarm.sort((a, b) => compareFitness(a.best.fitness, b.best.fitness));
    const parents = swarm.slice(0, SWARM / 2).map((p) => p.best);
    for (const p of swarm.slice(SWARM / 2)) {
      p.position = offspring(
        rng,
        tournament(rng, parents).genome,
        tournament(rng, parents).genome,
        rate,
      );
      for (let i = 0; i < p.velocity.length; i++) p.velocity[i] = (rng.next() - 0.5) * MAX_SPEED;
      improve(p, tally.evaluate(p.position));
    }
  }
  return tally.outcome();
}

export function runPso(problem: SwarmProblem, options: SwarmOptions): SwarmOutcome {
  return runSwarm(problem, options, false);
}

export function runHybrid(problem: SwarmProblem, options: SwarmOptions): SwarmOutcome {
  return runSwarm(problem, options, true);
}

export const SWARM_RUNNERS: Record<
  SwarmAlgorithm,
  (p: SwarmProblem, o: SwarmOptions) => SwarmOutcome
> = {
  ga: runGa,
  pso: runPso,
  hybrid: runHybrid,
};
