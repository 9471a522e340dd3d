/**
 * A tensor-parallel group's lifecycle on `node:diagnostics_channel`: subscribe by name.
 * Publishing costs nothing when no one subscribes.
 */
import { channel } from 'node:diagnostics_channel';
import type { AllReduceAlgorithm } from './description.js';

export const GROUP_EVENTS = {
  /** A member's links to the members it exchanges parts with are all open. */
  joined: 'swarmbee:protocol:group-joined',
  /** A member saw another one go (its link closed, it reported an error, or a sum timed out). */
  memberLost: 'swarmbee:protocol:group-member-lost',
  /** A member left its group (`close()`). */
  left: 'swarmbee:protocol:group-left',
} as const;

export interface GroupJoinedEvent {
  group: string;
  stage: number;
  rank: number;
  size: number;
  algorithm: AllReduceAlgorithm;
  /** Time from join to every link open, ms. */
  joinMs: number;
}

export interface GroupMemberLostEvent {
  group: string;
  stage: number;
  /** The member that saw it. */
  rank: number;
  /** The member lost, when known (the link's far end or the member that timed out). */
  lost: number | undefined;
  code: string;
  message: string;
}

export interface GroupLeftEvent {
  group: string;
  stage: number;
  rank: number;
  /** Sums this member completed. */
  sums: number;
}

export const groupJoinedChannel = channel(GROUP_EVENTS.joined);
export const groupMemberLostChannel = channel(GROUP_EVENTS.memberLost);
export const groupLeftChannel = channel(GROUP_EVENTS.left);
