/**
 * Where a tensor-parallel group's LM head runs on the last stage — on its leader, or split by
 * vocabulary across its members, whichever is predicted faster (issue 19, item 2):
 *
 * - `leader`: the leader runs the whole head (its profiled time at b rows) and holds it (a tied
 *   head on stage 0 shares the embedding's matrix, as on a single device);
 * - `split`: each member runs its vocabulary rows (dealt by weight like the feed-forward
 *   columns, in units of 32: its share of its own head time), then the members' logits are
 *   summed, one more all-reduce, of [b, vocabulary] fp32; each member holds its rows of the
 *   head (the leader of a tied stage 0 finds its rows in the embedding).
 *
 * Chosen: what the plan says (`GroupHow.head`), else the faster of the two whose members all
 * fit, the leader on a tie. Before the last stage there is no head; the leader of stage 0
 * holds the embedding.
 */
import { TensorSplitError } from '@swarmbee/core';
import type { GroupCosts, GroupHow, PreparedGroup } from './group-cost.js';

export type HeadMode = 'leader' | 'split';

export interface HeadCost {
  mode: HeadMode;
  /** The head's decode time at b rows (0 before the last stage). */
  decodeNs: number;
  /** The head on one position, after the prompt's last chunk (0 before the last stage). */
  firstTokenNs: number;
  /** What each member holds, by rank: its layers' share plus the embedding and head it keeps. */
  memoryBytes: number[];
}

export function chooseHead(
  groups: GroupCosts,
  group: readonly number[],
  prepared: PreparedGroup,
  at: { first: boolean; last: boolean; batch: number },
  layers: readonly number[],
  how?: GroupHow,
): HeadCost {
  const { cost } = groups;
  const { embeddingBytes, headBytes, tiedEmbedding, vocabSize } = cost.model;
  const leader = group[0]!;
  const base = layers.map((bytes, rank) => bytes + (rank === 0 && at.first ? embeddingBytes : 0));
  if (!at.last) return { mode: 'leader', decodeNs: 0, firstTokenNs: 0, memoryBytes: base };
  // A tied head on stage 0 is the embedding the leader already holds, but for the final norm.
  const leaderRows = (bytes: number) =>
    at.first && tiedEmbedding ? Math.max(0, headBytes - embeddingBytes) : bytes;
  const onLeader: HeadCost = {
    mode: 'leader',
    decodeNs: cost.headDecodeNs(leader, at.batch),
    firstTokenNs: cost.headDecodeNs(leader, 1),
    memoryBytes: base.map((bytes, rank) => bytes + (rank === 0 ? leaderRows(headBytes) : 0)),
  };
  const shares = prepared.split.vocabFractions;
  if (how?.head === 'split' && !shares)
    throw new TensorSplitError(
      `${vocabSize} vocabulary rows cannot be split across ${group.length} members`,
    );
  if (how?.head === 'leader' || !shares) return onLeader;
  const { algorithm } = prepared;
  const splitNs = (rows: number) =>
    groups.cachedNs(
      `head/${prepared.key}/${rows}`,
      () =>
        Math.max(
          ...group.map((d, rank) => Math.round(shares[rank]! * cost.headDecodeNs(d, rows))),
        ) + groups.allReduceElements(group, rows * vocabSize, algorithm).ns,
    );
  const onMembers: HeadCost = {
    mode: 'split',
    decodeNs: splitNs(at.batch),
    firstTokenNs: splitNs(1),
    memoryBytes: base.map(
      (bytes, rank) =>
        bytes + (rank === 0 ? leaderRows(shares[0]! * headBytes) : shares[rank]! * headBytes),
    ),
  };
  if (how?.head === 'split') return onMembers;
  const fits = (h: HeadCost) =>
    group.every((d, rank) => h.memoryBytes[rank]! <= cost.devices[d]!.memoryBytes);
  if (!fits(onMembers)) return onLeader;
  return !fits(onLeader) || onMembers.decodeNs < onLeader.decodeNs ? onMembers : onLeader;
}
