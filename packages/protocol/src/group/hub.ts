/**
 * The accepting side of tensor-group links on a data-plane server. A member dials the
 * members of lower rank it exchanges parts with and opens each link with `group.join`; the
 * server that accepted the link hands every message of it to `route`, which files the
 * link with the local member of that group — or holds it (and what arrives on it) until
 * that member joins, for up to `unclaimedMs`, since members start in any order.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import type { Channel } from '../channel.js';
import { CLOSE_CODES } from '../close-codes.js';
import type { DataMessage } from '../messages/index.js';

/** What the hub needs of a local member: its group and where to deliver. */
export interface HubMember {
  readonly groupId: string;
  /** A link from member `rank` opened; later messages on it go to `receive`. */
  adopt(channel: Channel<'data'>, rank: number, size: number): void;
  receive(channel: Channel<'data'>, message: DataMessage): void;
}

interface Unclaimed {
  channel: Channel<'data'>;
  group: string;
  rank: number;
  size: number;
  held: DataMessage[];
  timer: NodeJS.Timeout;
}

/** Default time a link may wait for its group's member to join here, ms. */
export const DEFAULT_UNCLAIMED_LINK_MS = 30_000;
/** Most messages held on a link whose member has not joined yet (a sum sends ≤ 2k parts). */
const MAX_HELD_MESSAGES = 256;

export class GroupHub {
  readonly #members = new Map<string, HubMember>();
  readonly #owners = new Map<Channel<'data'>, HubMember>();
  readonly #unclaimed = new Map<Channel<'data'>, Unclaimed>();
  readonly #unclaimedMs: number;

  constructor(options: { unclaimedMs?: number } = {}) {
    this.#unclaimedMs = options.unclaimedMs ?? DEFAULT_UNCLAIMED_LINK_MS;
  }

  /** Makes `member` the receiver of its group's links here; takes the ones already waiting. */
  register(member: HubMember): void {
    if (this.#members.has(member.groupId))
      throw new InvalidArgumentError(
        `a member of tensor group ${member.groupId} already runs here`,
      );
    this.#members.set(member.groupId, member);
    for (const waiting of [...this.#unclaimed.values()]) {
      if (waiting.group !== member.groupId) continue;
      clearTimeout(waiting.timer);
      this.#unclaimed.delete(waiting.channel);
      this.#file(waiting.channel, member, waiting.rank, waiting.size);
      for (const message of waiting.held) member.receive(waiting.channel, message);
    }
  }

  unregister(member: HubMember): void {
    if (this.#members.get(member.groupId) === member) this.#members.delete(member.groupId);
    for (const [channel, owner] of this.#owners) if (owner === member) this.#owners.delete(channel);
  }

  /**
   * Takes `message` if it belongs to a group link: a `group.join`, or anything on a link
   * one opened. Returns false for every other message (the server handles those).
   */
  route(channel: Channel<'data'>, message: DataMessage): boolean {
    const owner = this.#owners.get(channel);
    if (owner !== undefined) {
      owner.receive(channel, message);
      return true;
    }
    const waiting = this.#unclaimed.get(channel);
    if (waiting !== undefined) {
      if (waiting.held.length >= MAX_HELD_MESSAGES) {
        channel.close(CLOSE_CODES.policyViolation, 'SWARMBEE_ERR_SEND_QUEUE_FULL');
        return true;
      }
      waiting.held.push(message);
      return true;
    }
    if (message.type === 'allreduce.part') {
      // A part on a link that never joined a group: refused, never summed.
      channel.close(CLOSE_CODES.policyViolation, 'SWARMBEE_ERR_ALLREDUCE_PART_MISMATCH');
      return true;
    }
    if (message.type !== 'group.join') return false;
    const member = this.#members.get(message.group);
    if (member !== undefined) {
      this.#file(channel, member, message.rank, message.size);
      return true;
    }
    const timer = setTimeout(() => {
      this.#unclaimed.delete(channel);
      channel.close(CLOSE_CODES.policyViolation, 'no member of this group joined here');
    }, this.#unclaimedMs);
    timer.unref();
    const { group, rank, size } = message;
    this.#unclaimed.set(channel, { channel, group, rank, size, held: [], timer });
    channel.once('close', () => {
      clearTimeout(timer);
      this.#unclaimed.delete(channel);
    });
    return true;
  }

  #file(channel: Channel<'data'>, member: HubMember, rank: number, size: number): void {
    this.#owners.set(channel, member);
    channel.once('close', () => this.#owners.delete(channel));
    member.adopt(channel, rank, size);
  }
}
