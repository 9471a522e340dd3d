/**
 * A tensor-parallel group on loopback for tests: each member its own data-plane server on
 * 127.0.0.1:0 routing group links to its hub, all joined, everything stopped in teardown.
 */
import {
  type AllReduceAlgorithm,
  type ChannelServer,
  DataPlaneAllReduce,
  GroupHub,
  type GroupMemberOptions,
  listen,
  type TensorGroup,
} from '@swarmbee/protocol';
import type { Test } from 'tap';
import { TOKEN } from './net.js';

export interface LoopbackGroup {
  group: TensorGroup;
  members: DataPlaneAllReduce[];
  servers: ChannelServer[];
  hubs: GroupHub[];
}

/** Servers whose data channels route to a hub each (the members join separately). */
export async function groupServers(
  t: Test,
  size: number,
): Promise<{ servers: ChannelServer[]; hubs: GroupHub[] }> {
  const hubs = Array.from({ length: size }, () => new GroupHub());
  const servers = await Promise.all(
    hubs.map((hub) =>
      listen({ token: TOKEN, host: '127.0.0.1', port: 0 }, (channel) => {
        if (channel.plane !== 'data') return;
        channel.on('message', (message) => {
          if (!hub.route(channel, message)) channel.close(1008, 'group links only');
        });
      }),
    ),
  );
  t.teardown(() => Promise.all(servers.map((server) => server.close())));
  return { servers, hubs };
}

export async function startGroup(
  t: Test,
  size: number,
  algorithm: AllReduceAlgorithm,
  options: Partial<GroupMemberOptions> = {},
): Promise<LoopbackGroup> {
  const { servers, hubs } = await groupServers(t, size);
  const group: TensorGroup = {
    id: `g-${algorithm}-${size}`,
    stage: 1,
    members: servers.map((server) => server.url),
    algorithm,
  };
  const members = await Promise.all(
    hubs.map((hub, rank) =>
      DataPlaneAllReduce.join({ group, rank, token: TOKEN, hub, ...options }),
    ),
  );
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  return { group, members, servers, hubs };
}

/** Seeded partial vectors: member r's values, of every magnitude, so rounding differs by order. */
export function partials(size: number, length: number, seed: number): Float32Array[] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: size }, () =>
    Float32Array.from({ length }, () => (next() - 0.5) * 10 ** Math.floor(next() * 8 - 4)),
  );
}
