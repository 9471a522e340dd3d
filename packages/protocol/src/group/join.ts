/**
 * How a member joins its group: its options, dialing a member of lower rank (the link opens
 * with `group.join`), and waiting for the links from higher ranks to arrive.
 */
import type { SwarmBeeError } from '@swarmbee/core';
import type { Channel } from '../channel.js';
import type { ClientTlsOptions } from '../client.js';
import { connectShaped, type LinkShape } from '../link-shaper.js';
import type { ChannelOptions } from '../options.js';
import type { TensorGroup } from './description.js';
import type { GroupHub } from './hub.js';

/** Default time one sum may take before the group fails, ms. */
export const DEFAULT_SUM_TIMEOUT_MS = 10_000;
/** Default time for every link of a member to open, ms (members may start seconds apart). */
export const DEFAULT_GROUP_JOIN_TIMEOUT_MS = 30_000;

export interface GroupMemberOptions {
  group: TensorGroup;
  /** This member's rank in `group.members`. */
  rank: number;
  /** The cluster join token: every link is authenticated like any data-plane connection. */
  token: string;
  /** Where links dialed by higher ranks arrive: the hub this member's data-plane server routes to. */
  hub: GroupHub;
  /** The name this member gives the members it dials; default `<group id>/<rank>`. */
  name?: string;
  /** Time one sum may take, ms (a step timeout on top of any `signal`); default 10000. */
  sumTimeoutMs?: number;
  /** Time for every link to open, ms; default 30000. */
  joinTimeoutMs?: number;
  /** Limits and heartbeats of the links this member dials. */
  channel?: ChannelOptions;
  tls?: ClientTlsOptions;
  /** Dial through a user-space link shaper (benchmarks; ws:// only). */
  linkShape?: LinkShape;
  signal?: AbortSignal;
}

/** Opens the link to member `peer` (of lower rank) and announces this member on it. */
export async function dialMember(
  options: GroupMemberOptions,
  peer: number,
  signal: AbortSignal,
): Promise<Channel<'data'>> {
  const { group, rank } = options;
  const channel = await connectShaped(
    group.members[peer] as string,
    {
      ...options.channel,
      token: options.token,
      role: 'stage',
      name: options.name ?? `${group.id}/${rank}`,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      signal,
    },
    options.linkShape,
  );
  channel.send({ type: 'group.join', group: group.id, rank, size: group.members.length });
  return channel;
}

/** Resolves when `linked` does; rejects with `failure()` if `signal` aborts first. */
export function untilLinked(
  linked: Promise<void>,
  signal: AbortSignal,
  failure: () => SwarmBeeError,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(failure());
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void linked.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
