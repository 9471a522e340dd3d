/**
 * The tensor-parallel groups a worker's stages are members of. Group links from members of
 * higher rank arrive at the worker's data-plane server and are routed here (`route`); a
 * member joins with `join`, which dials the lower ranks with the worker's token and TLS
 * settings, and gets the `AllReduce` its stage engine sums partials with. The worker leaves
 * every group when it stops.
 */
import type { AllReduce } from '@swarmbee/core';
import {
  type Channel,
  type ChannelOptions,
  type ClientTlsOptions,
  type DataMessage,
  DataPlaneAllReduce,
  GroupHub,
  type LinkShape,
  type TensorGroup,
} from '@swarmbee/protocol';

export interface TensorGroupJoinOptions {
  /** Time one sum may take, ms; default DEFAULT_SUM_TIMEOUT_MS (10000). */
  sumTimeoutMs?: number;
  /** Time for the member's links to open, ms; default DEFAULT_GROUP_JOIN_TIMEOUT_MS (30000). */
  joinTimeoutMs?: number;
  signal?: AbortSignal;
}

export class TensorGroups {
  readonly #hub = new GroupHub();
  readonly #members = new Set<DataPlaneAllReduce>();

  constructor(
    private readonly link: {
      token: string;
      /** This worker's name: a member dials as `<worker>/<group>/<rank>`. */
      name: string;
      tls?: ClientTlsOptions | undefined;
      channel?: ChannelOptions | undefined;
      /** Benchmarks and tests: shape the links this member dials. */
      linkShape?: LinkShape | undefined;
    },
  ) {}

  /** Takes a data-plane message that belongs to a group link; false for any other. */
  route(channel: Channel<'data'>, message: DataMessage): boolean {
    return this.#hub.route(channel, message);
  }

  /** Joins `group` as member `rank`; resolves once its links are open. */
  async join(
    group: TensorGroup,
    rank: number,
    options: TensorGroupJoinOptions = {},
  ): Promise<AllReduce> {
    const member = await DataPlaneAllReduce.join({
      ...options,
      group,
      rank,
      token: this.link.token,
      hub: this.#hub,
      name: `${this.link.name}/${group.id}/${rank}`.slice(0, 128),
      ...(this.link.tls === undefined ? {} : { tls: this.link.tls }),
      ...(this.link.channel === undefined ? {} : { channel: this.link.channel }),
      ...(this.link.linkShape === undefined ? {} : { linkShape: this.link.linkShape }),
    });
    for (const left of this.#members) if (left.closed) this.#members.delete(left);
    this.#members.add(member);
    return member;
  }

  /** Leaves every group (pending sums reject). */
  async close(): Promise<void> {
    await Promise.all([...this.#members].map((member) => member.close()));
  }
}
