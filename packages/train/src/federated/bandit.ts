/**
 * Choosing each data owner's settings per round with a multi-armed bandit (UCB1), as
 * FedSpine does: an arm is a (local steps, LoRA rank, pruned layers) triple, its reward the loss decrease
 * the owner bought per second of its time. Every arm is tried once first; then the arm
 * with the highest mean reward plus √(2 ln t / n) wins, rewards scaled by the largest
 * magnitude seen so far so the exploration term keeps its meaning whatever their unit.
 */
import { InvalidArgumentError } from '@swarmbee/core';

export interface FederatedArm {
  /** Optimizer steps the owner runs in the round. */
  localSteps: number;
  /** LoRA rank it trains (≤ the global rank). */
  rank: number;
  /** Layers it trains without (the least influential, pruned). */
  prunedLayers: number;
}

export class UcbBandit {
  readonly #pulls: number[];
  readonly #sums: number[];
  #scale = 0;
  #total = 0;

  constructor(readonly arms: readonly FederatedArm[]) {
    if (arms.length === 0) throw new InvalidArgumentError('a bandit needs at least one arm');
    this.#pulls = arms.map(() => 0);
    this.#sums = arms.map(() => 0);
  }

  /** The arm to play next (the first untried one, then the best upper bound). */
  choose(): number {
    const untried = this.#pulls.indexOf(0);
    if (untried >= 0) return untried;
    let best = 0;
    let bestBound = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < this.arms.length; i++) {
      const mean = this.#sums[i]! / this.#pulls[i]! / (this.#scale || 1);
      const bound = mean + Math.sqrt((2 * Math.log(this.#total)) / this.#pulls[i]!);
      if (bound > bestBound) {
        best = i;
        bestBound = bound;
      }
    }
    return best;
  }

  /** Records arm `index`'s reward (a non-finite one counts as 0). */
  record(index: number, reward: number): void {
    const r = Number.isFinite(reward) ? reward : 0;
    this.#pulls[index]!++;
    this.#sums[index]! += r;
    this.#total++;
    this.#scale = Math.max(this.#scale, Math.abs(r));
  }

  /** Each arm's plays and mean reward. */
  summary(): { arm: FederatedArm; pulls: number; meanReward: number }[] {
    return this.arms.map((arm, i) => ({
      arm,
      pulls: this.#pulls[i]!,
      meanReward: this.#pulls[i] ? this.#sums[i]! / this.#pulls[i]! : 0,
    }));
  }
}
