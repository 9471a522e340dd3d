/**
 * `DataPlaneAllReduce`: the `AllReduce` of one tensor-parallel group member over the data
 * plane. `join` opens the member's links (it dials the linked members of lower rank and
 * sends `group.join`; links from higher ranks arrive through its server's {@link GroupHub})
 * and resolves once all are open; they stay open for the group's life. Each `sum` runs the
 * group's algorithm (reductions.ts) over raw `allreduce.part` tensor frames.
 *
 * Failure is final: a closed link, an `error` from a member, a part that does not match the
 * sum in progress, a timeout or an abort rejects the pending sum and every later one with a
 * coded, retryable error naming the stage and member, and tells the linked members why.
 * The group is formed again from its description, as a lost stage is re-planned.
 *
 * Buffers: the result is written into the caller's `partial`. Outgoing parts are copied into
 * one of two send arenas by the sum's parity (`seq & 1`), since a socket may still hold a
 * part's bytes after the sum resolves; by sum s + 2 every member has finished s + 1, which
 * needs every part of s received (every member takes all parts sent to it before it
 * finishes), so the arena of s is free again. Incoming parts are views into their frames.
 */
import {
  AbortedError,
  type AllReduce,
  AllReducePartMismatchError,
  asSwarmBeeError,
  ChannelClosedError,
  fromWire,
  GroupMemberLostError,
  InvalidArgumentError,
  type SwarmBeeError,
  TimeoutError,
} from '@swarmbee/core';
import type { Channel } from '../channel.js';
import { CLOSE_CODES } from '../close-codes.js';
import { errorMessageFor } from '../codec.js';
import { type ChannelCounters, publish } from '../diagnostics.js';
import type { AllReducePartMessage, DataMessage } from '../messages/index.js';
import { float32Tensor, float32Values } from '../tensor.js';
import { checkTensorGroup, linkedRanks, type TensorGroup } from './description.js';
import { groupJoinedChannel, groupLeftChannel, groupMemberLostChannel } from './events.js';
import type { GroupHub, HubMember } from './hub.js';
import {
  DEFAULT_GROUP_JOIN_TIMEOUT_MS,
  DEFAULT_SUM_TIMEOUT_MS,
  dialMember,
  type GroupMemberOptions,
  untilLinked,
} from './join.js';
import { type Reduction, reductionFor } from './reductions.js';

interface PendingSum {
  partial: Float32Array;
  resolve: (sum: Float32Array) => void;
  reject: (error: SwarmBeeError) => void;
  signal: AbortSignal | undefined;
}

interface EarlyPart {
  from: number;
  part: AllReducePartMessage;
  values: Float32Array;
}

export class DataPlaneAllReduce implements AllReduce, HubMember {
  readonly rank: number;
  readonly size: number;
  readonly group: TensorGroup;
  readonly #hub: GroupHub;
  readonly #links: (Channel<'data'> | undefined)[];
  readonly #rankOf = new Map<Channel<'data'>, number>();
  readonly #expected: ReadonlySet<number>;
  readonly #reduction: Reduction;
  readonly #early: EarlyPart[] = [];
  readonly #arenas: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
  readonly #sumTimeoutMs: number;
  readonly #timer: NodeJS.Timeout;
  #seq = 0;
  #pending: PendingSum | undefined;
  #failure: SwarmBeeError | undefined;
  #closing = false;
  #linked: (() => void) | undefined;

  private constructor(options: GroupMemberOptions) {
    const { group, rank } = options;
    this.group = group;
    this.rank = rank;
    this.size = group.members.length;
    this.#hub = options.hub;
    this.#links = new Array(this.size).fill(undefined);
    this.#expected = new Set(linkedRanks(group, rank));
    this.#reduction = reductionFor(group, rank, (to, round, offset, values) =>
      this.#send(to, round, offset, values),
    );
    this.#sumTimeoutMs = options.sumTimeoutMs ?? DEFAULT_SUM_TIMEOUT_MS;
    // One timer for every sum: refreshed when a sum starts (which re-arms it after it fired),
    // idle when it fires with no sum pending; cleared only when the member ends.
    this.#timer = setTimeout(() => this.#timedOut(), this.#sumTimeoutMs);
    this.#timer.unref();
  }

  get groupId(): string {
    return this.group.id;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closing;
  }

  /** Sums completed. */
  get sums(): number {
    return this.#seq;
  }

  /** Encoded bytes and frames over this member's links, summed (see Channel.counters). */
  get counters(): ChannelCounters {
    const total: ChannelCounters = {
      bytesSent: 0,
      bytesReceived: 0,
      framesSent: 0,
      framesReceived: 0,
    };
    for (const link of this.#links) {
      if (link === undefined) continue;
      const counters = link.counters;
      total.bytesSent += counters.bytesSent;
      total.bytesReceived += counters.bytesReceived;
      total.framesSent += counters.framesSent;
      total.framesReceived += counters.framesReceived;
    }
    return total;
  }

  /**
   * Joins the group: resolves once this member's links are all open. Rejects with
   * InvalidArgumentError (bad description), ConnectFailedError / AuthFailedError (a link),
   * TimeoutError (not every member came within `joinTimeoutMs`) or AbortedError.
   */
  static async join(options: GroupMemberOptions): Promise<DataPlaneAllReduce> {
    checkTensorGroup(options.group, options.rank);
    const started = performance.now();
    const member = new DataPlaneAllReduce(options);
    const { group, rank, signal } = options;
    const joinTimeoutMs = options.joinTimeoutMs ?? DEFAULT_GROUP_JOIN_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(joinTimeoutMs);
    const joinSignal = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);
    const linked = new Promise<void>((resolve) => {
      member.#linked = resolve;
    });
    member.#hub.register(member);
    try {
      await Promise.all(
        [...member.#expected]
          .filter((peer) => peer < rank)
          .map(async (peer) => {
            const channel = await dialMember(options, peer, joinSignal);
            channel.on('message', (message) => member.receive(channel, message));
            member.adopt(channel, peer, member.size);
          }),
      );
      member.#checkLinked();
      await untilLinked(linked, joinSignal, () =>
        deadline.aborted
          ? new TimeoutError(
              `tensor group ${group.id} (stage ${group.stage}) member ${rank}: links from members ${member.#missing().join(', ')} did not open within ${joinTimeoutMs} ms`,
              { stage: group.stage, retryable: true },
            )
          : new AbortedError(`joining tensor group ${group.id} aborted`),
      );
      if (member.#failure) throw member.#failure;
    } catch (error) {
      await member.close();
      throw asSwarmBeeError(error, group.stage);
    }
    publish(groupJoinedChannel, () => ({
      group: group.id,
      stage: group.stage,
      rank,
      size: member.size,
      algorithm: group.algorithm,
      joinMs: performance.now() - started,
    }));
    return member;
  }

  sum(partial: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing)
      return Promise.reject(new ChannelClosedError(`${this.#who()} has left its group`));
    if (this.#pending)
      return Promise.reject(
        new InvalidArgumentError(`${this.#who()}: one sum at a time (sum ${this.#seq} is pending)`),
      );
    if (signal?.aborted) {
      this.#fail(new AbortedError(`${this.#who()}: sum ${this.#seq} aborted`, this.#stage()));
      return Promise.reject(this.#failure);
    }
    return new Promise<Float32Array>((resolve, reject) => {
      this.#pending = { partial, resolve, reject, signal };
      signal?.addEventListener('abort', this.#aborted, { once: true });
      this.#timer.refresh();
      try {
        this.#reduction.start(partial);
        for (const { from, part, values } of this.#early) this.#take(from, part, values);
        this.#early.length = 0;
        if (this.#reduction.done) this.#complete();
      } catch (error) {
        this.#early.length = 0;
        this.#fail(asSwarmBeeError(error, this.group.stage));
      }
    });
  }

  /** Leaves the group: a pending sum rejects with ChannelClosedError; links close normally. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#settle(new ChannelClosedError(`${this.#who()} left its group`));
    this.#hub.unregister(this);
    const links = this.#links.filter((link) => link !== undefined);
    for (const link of links) link.close(CLOSE_CODES.normal, 'left the group');
    await Promise.all(links.map((link) => link.closed));
    publish(groupLeftChannel, () => ({
      group: this.group.id,
      stage: this.group.stage,
      rank: this.rank,
      sums: this.#seq,
    }));
  }

  /** A link to member `rank` is open (dialed here, or accepted through the hub). */
  adopt(channel: Channel<'data'>, rank: number, size: number): void {
    if (size !== this.size || !this.#expected.has(rank) || this.#links[rank] !== undefined) {
      channel.close(CLOSE_CODES.policyViolation, 'SWARMBEE_ERR_ALLREDUCE_PART_MISMATCH');
      return;
    }
    this.#links[rank] = channel;
    this.#rankOf.set(channel, rank);
    channel.once('close', (close) => {
      if (this.#closing) return;
      const why = close.error ? `${close.error.code}: ${close.error.message}` : close.reason;
      this.#fail(
        new GroupMemberLostError(
          `${this.#who()}: the link to member ${rank} closed (${close.code}${why ? `, ${why}` : ''})`,
          this.#stage(),
        ),
        rank,
      );
    });
    if (this.#closing) channel.close(CLOSE_CODES.normal, 'left the group');
    this.#checkLinked();
  }

  receive(channel: Channel<'data'>, message: DataMessage): void {
    if (this.#failure || this.#closing) return;
    const from = this.#rankOf.get(channel);
    if (from === undefined) return;
    if (message.type === 'error') {
      this.#fail(fromWire(message), from);
      return;
    }
    if (message.type !== 'allreduce.part') {
      this.#fail(this.#mismatch(`member ${from} sent a ${message.type} message on a group link`));
      return;
    }
    if (message.group !== this.group.id || message.from !== from || message.seq !== this.#seq) {
      this.#fail(
        this.#mismatch(
          `a part of group ${message.group}, sum ${message.seq}, from member ${message.from} arrived on member ${from}'s link during sum ${this.#seq}`,
        ),
      );
      return;
    }
    const values = float32Values(message.values);
    if (this.#pending === undefined) {
      if (this.#early.length >= 2 * this.size) {
        this.#fail(this.#mismatch(`more parts of sum ${this.#seq} than the sum has`));
        return;
      }
      this.#early.push({ from, part: message, values });
      return;
    }
    try {
      this.#take(from, message, values);
      if (this.#reduction.done) this.#complete();
    } catch (error) {
      this.#fail(asSwarmBeeError(error, this.group.stage));
    }
  }

  #take(from: number, part: AllReducePartMessage, values: Float32Array): void {
    this.#reduction.take(from, part.round, part.offset, part.length, values);
  }

  #send(to: number, round: number, offset: number, values: Float32Array): void {
    const length = (this.#pending as PendingSum).partial.length;
    const parity = this.#seq & 1;
    if ((this.#arenas[parity] as Float32Array).length < length)
      this.#arenas[parity] = new Float32Array(length);
    const view = (this.#arenas[parity] as Float32Array).subarray(offset, offset + values.length);
    view.set(values);
    const link = this.#links[to];
    if (link === undefined)
      throw new GroupMemberLostError(`${this.#who()}: no link to member ${to}`);
    link.send({
      type: 'allreduce.part',
      group: this.group.id,
      seq: this.#seq,
      round,
      from: this.rank,
      offset,
      length,
      values: float32Tensor(view, [view.length]),
    });
  }

  #complete(): void {
    const pending = this.#pending as PendingSum;
    pending.signal?.removeEventListener('abort', this.#aborted);
    this.#pending = undefined;
    this.#seq += 1;
    pending.resolve(pending.partial);
  }

  readonly #aborted = (): void => {
    this.#fail(new AbortedError(`${this.#who()}: sum ${this.#seq} aborted`, this.#stage()));
  };

  #timedOut(): void {
    if (this.#pending === undefined) return;
    this.#fail(
      new TimeoutError(
        `${this.#who()}: sum ${this.#seq} took over ${this.#sumTimeoutMs} ms (the members it waited for: ${[...this.#expected].join(', ')})`,
        { ...this.#stage(), retryable: true },
      ),
    );
  }

  /** Ends the group for this member: rejects what is pending, tells the linked members why. */
  #fail(error: SwarmBeeError, lost?: number): void {
    if (this.#failure || this.#closing) return;
    this.#failure = error;
    clearTimeout(this.#timer);
    publish(groupMemberLostChannel, () => ({
      group: this.group.id,
      stage: this.group.stage,
      rank: this.rank,
      lost,
      code: error.code,
      message: error.message,
    }));
    this.#settle(error);
    for (const link of this.#links) {
      if (link === undefined || link.state !== 'open') continue;
      try {
        link.send(errorMessageFor(error));
      } catch {
        // The link is going anyway; its close still ends the group for the member beyond.
      }
      link.close(CLOSE_CODES.normal, error.code);
    }
    this.#linked?.();
  }

  #settle(error: SwarmBeeError): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#early.length = 0;
    if (pending === undefined) return;
    pending.signal?.removeEventListener('abort', this.#aborted);
    pending.reject(error);
  }

  #checkLinked(): void {
    if (this.#missing().length === 0) this.#linked?.();
  }

  #missing(): number[] {
    return [...this.#expected].filter((peer) => this.#links[peer] === undefined);
  }

  #mismatch(what: string): AllReducePartMismatchError {
    return new AllReducePartMismatchError(`${this.#who()}: ${what}`, this.#stage());
  }

  #stage(): { stage: number } {
    return { stage: this.group.stage };
  }

  #who(): string {
    return `tensor group ${this.group.id} (stage ${this.group.stage}) member ${this.rank}`;
  }
}
