/**
 * Measurements of the `allreduce` part: k members in their own processes on loopback sum
 * vectors over the data plane, unshaped and through the user-space link shaper; beside them
 * one data-plane hop (a `forward` frame echoed by a member process, half the round trip).
 */
import {
  connectShaped,
  float32Tensor,
  generateClusterToken,
  type LinkShape,
} from '@swarmbee/protocol';
import type { SuiteContext } from '../suite.js';
import { MemberProcess } from './member-process.js';

export interface LinkSetup {
  label: string;
  /** Undefined: plain loopback. */
  shape: LinkShape | undefined;
}

/** Links measured: loopback, and the two emulated edge links. */
export const LINK_SETUPS: readonly LinkSetup[] = [
  { label: 'loopback', shape: undefined },
  { label: '1 Gbit/s + 0.2 ms', shape: { delayMs: 0.2, bytesPerSecond: 125e6 } },
  { label: '100 Mbit/s + 2 ms', shape: { delayMs: 2, bytesPerSecond: 12.5e6 } },
];
/** Vector lengths (fp32): stories260K's dim, stories15M's, the 110M preset's, 2048, 4096. */
export const ALLREDUCE_ELEMENTS = [64, 288, 768, 2048, 4096] as const;
export const ALLREDUCE_MEMBERS = [2, 3, 4] as const;
export const ALLREDUCE_ALGORITHMS = ['star', 'ring'] as const;

export interface SumRun {
  link: string;
  members: number;
  algorithm: 'star' | 'ring';
  elements: number;
  /** Every member's per-call wall time, µs, pooled. */
  wallUs: number[];
  /** CPU µs per call, mean over members. */
  cpuUs: number;
  /** Bytes sent per call: mean over members, and the most any member sent. */
  bytesMean: number;
  bytesMax: number;
  /** Every member's checksum of its last sum (equal bits give equal checksums). */
  checksums: number[];
}

export interface HopRun {
  link: string;
  elements: number;
  /** Half of each round trip of a forward frame carrying [1, 1, elements] fp32, µs. */
  hopUs: number[];
}

export interface AllReduceFigures {
  sums: SumRun[];
  hops: HopRun[];
  iterations: Record<string, number>;
}

function iterationsFor(link: LinkSetup, quick: boolean): number {
  if (link.shape === undefined) return quick ? 100 : 400;
  return link.shape.delayMs < 1 ? (quick ? 40 : 150) : quick ? 20 : 60;
}

async function measureHop(
  url: string,
  token: string,
  link: LinkSetup,
  elements: number,
  rounds: number,
): Promise<number[]> {
  const channel = await connectShaped(url, { token, role: 'stage', name: 'bench-hop' }, link.shape);
  try {
    const hidden = float32Tensor(new Float32Array(elements).fill(0.5), [1, 1, elements]);
    const rows = [{ seqId: 's', start: 0, count: 1 }];
    const times: number[] = [];
    for (let i = 0; i < rounds + 10; i++) {
      const started = performance.now();
      const echoed = new Promise<void>((resolve) => channel.once('message', () => resolve()));
      channel.send({ type: 'forward', batchId: i, rows, hidden });
      await echoed;
      if (i >= 10) times.push(((performance.now() - started) * 1000) / 2);
    }
    return times;
  } finally {
    channel.close();
    await channel.closed;
  }
}

export async function measureAllReduce(context: SuiteContext): Promise<AllReduceFigures> {
  const token = generateClusterToken();
  const maxMembers = Math.max(...ALLREDUCE_MEMBERS);
  const processes: MemberProcess[] = [];
  const figures: AllReduceFigures = { sums: [], hops: [], iterations: {} };
  try {
    for (let i = 0; i < maxMembers; i++) processes.push(await MemberProcess.start(token));
    let groups = 0;
    for (const link of LINK_SETUPS) {
      const iterations = iterationsFor(link, context.quick);
      figures.iterations[link.label] = iterations;
      for (const elements of ALLREDUCE_ELEMENTS) {
        context.progress(`parallel allreduce: one hop, ${link.label}, ${elements} elements`);
        const hopUs = await measureHop(processes[0]!.url, token, link, elements, iterations);
        figures.hops.push({ link: link.label, elements, hopUs });
      }
      for (const members of ALLREDUCE_MEMBERS) {
        for (const algorithm of ALLREDUCE_ALGORITHMS) {
          const group = {
            id: `bench-${++groups}`,
            stage: 0,
            members: processes.slice(0, members).map((p) => p.url),
            algorithm,
          };
          context.progress(`parallel allreduce: ${link.label}, k=${members} ${algorithm}`);
          const team = processes.slice(0, members);
          await Promise.all(
            team.map((p, rank) =>
              p.command(
                { cmd: 'join', group, rank, ...(link.shape ? { linkShape: link.shape } : {}) },
                'joined',
              ),
            ),
          );
          for (const elements of ALLREDUCE_ELEMENTS) {
            const runs = await Promise.all(
              team.map((p) =>
                p.command({ cmd: 'run', elements, warmup: 10, iterations, seed: elements }, 'ran'),
              ),
            );
            figures.sums.push({
              link: link.label,
              members,
              algorithm,
              elements,
              wallUs: runs.flatMap((r) => r.wallUs),
              cpuUs: runs.reduce((a, r) => a + r.cpuUs, 0) / members,
              bytesMean: runs.reduce((a, r) => a + r.bytesSent, 0) / members,
              bytesMax: Math.max(...runs.map((r) => r.bytesSent)),
              checksums: runs.map((r) => r.checksum),
            });
          }
          await Promise.all(team.map((p) => p.command({ cmd: 'leave' }, 'left')));
        }
      }
    }
    return figures;
  } finally {
    await Promise.allSettled(processes.map((p) => p.stop()));
  }
}
