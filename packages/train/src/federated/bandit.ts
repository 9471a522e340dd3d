/**
 * Choosing each data owner's settings per round with a multi-armed bandit (UCB1), as
 * FedSpine does: an arm is a (local steps, LoRA rank, pruned layers) triple, its reward the loss decrease
 * the owner bought per second of its time. Every arm is tried once first; then the arm
 * with the highest mean reward plus √(2 ln t / n) wins, rewards scaled by the largest
 * magnitude seen so far so the exploration term keeps its meaning whatever their unit.
 *
 * That reward falls round by round as the loss falls, for every arm alike, so the arms tried
 * first would look best forever. The rounds therefore feed each owner's reward relative to the
 * round's ({@link roundRelativeRewards}), and the owners' bandits try their arms in staggered
 * orders (`firstArm`), so that each round compares different arms at the same point of training.
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

  readonly #firstArm: number;

  /** `firstArm`: where the first pass over the untried arms starts (then in order, wrapping). Default 0. */
  constructor(
    readonly arms: readonly FederatedArm[],
    options: { firstArm?: number } = {},
  ) {
    if (arms.length === 0) throw new InvalidArgumentError('a bandit needs at least one arm');
    this.#pulls = arms.map(() => 0);
    this.#sums = arms.map(() => 0);
    this.#firstArm = (options.firstArm ?? 0) % arms.length;
  }

  /** The arm to play next (the next untried one from `firstArm`, then the best upper bound). */
  choose(): number {
    for (let k = 0; k < this.arms.length; k++) {
      const i = (this.#firstArm + k) % this.arms.length;
      if (this.#pulls[i] === 0) return i;
    }
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

/**
 * The owners' rewards of one round relative to the round: each less their mean, over their
 * mean magnitude (non-finite ones count as 0). What every arm gains or loses by the round —
 * the loss and its decrease falling, for all — cancels, in size too; what stays is how much
 * better or worse this owner's arm did than the others' arms did in the same round. A round
 * with one owner gives its reward as it is.
 */
export function roundRelativeRewards(rewards: readonly number[]): number[] {
  const finite = rewards.map((r) => (Number.isFinite(r) ? r : 0));
  if (finite.length < 2) return finite;
  const mean = finite.reduce((sum, r) => sum + r, 0) / finite.length;
  const magnitude = finite.reduce((sum, r) => sum + Math.abs(r), 0) / finite.length;
  return finite.map((r) => (magnitude > 0 ? (r - mean) / magnitude : 0));
}
