/**
 * One tensor-parallel member process of the `allreduce` part of `npm run bench -- parallel`,
 * driven over IPC by the benchmark: it serves a data-plane server (group links go to its
 * hub; `forward` frames are echoed back, for the one-hop baseline), joins the groups it is
 * told to, runs timed sums and reports per-call wall time, its CPU time and bytes sent.
 */
import {
  DataPlaneAllReduce,
  GroupHub,
  type LinkShape,
  listen,
  type TensorGroup,
} from '@swarmbee/protocol';

export type MemberCommand =
  | { cmd: 'join'; group: TensorGroup; rank: number; linkShape?: LinkShape }
  | { cmd: 'run'; elements: number; warmup: number; iterations: number; seed: number }
  | { cmd: 'leave' }
  | { cmd: 'exit' };

export type MemberReply =
  | { reply: 'listening'; url: string }
  | { reply: 'joined' }
  | { reply: 'ran'; wallUs: number[]; cpuUs: number; bytesSent: number; checksum: number }
  | { reply: 'left' }
  | { reply: 'failed'; code: string; message: string };

const token = process.env.SWARMBEE_BENCH_TOKEN ?? '';
const hub = new GroupHub();
let member: DataPlaneAllReduce | undefined;

const send = (message: MemberReply): void => {
  process.send?.(message);
};

const server = await listen({ token, host: '127.0.0.1', port: 0 }, (channel) => {
  if (channel.plane !== 'data') return;
  channel.on('message', (message) => {
    if (hub.route(channel, message)) return;
    if (message.type === 'forward') channel.send(message);
  });
});

async function run(command: Extract<MemberCommand, { cmd: 'run' }>): Promise<MemberReply> {
  if (member === undefined) throw new Error('run before join');
  const source = new Float32Array(command.elements);
  let state = (command.seed + member.rank * 7919) >>> 0;
  for (let i = 0; i < source.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    source[i] = state / 2 ** 32 - 0.5;
  }
  const partial = new Float32Array(command.elements);
  for (let i = 0; i < command.warmup; i++) {
    partial.set(source);
    await member.sum(partial);
  }
  const wallUs: number[] = [];
  const bytesBefore = member.counters.bytesSent;
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < command.iterations; i++) {
    partial.set(source);
    const started = performance.now();
    await member.sum(partial);
    wallUs.push((performance.now() - started) * 1000);
  }
  const cpu = process.cpuUsage(cpuBefore);
  let checksum = 0;
  for (const value of partial) checksum += value;
  return {
    reply: 'ran',
    wallUs,
    cpuUs: (cpu.user + cpu.system) / command.iterations,
    bytesSent: (member.counters.bytesSent - bytesBefore) / command.iterations,
    checksum,
  };
}

process.on('message', (command: MemberCommand) => {
  const handle = async (): Promise<MemberReply | undefined> => {
    switch (command.cmd) {
      case 'join':
        member = await DataPlaneAllReduce.join({
          group: command.group,
          rank: command.rank,
          token,
          hub,
          sumTimeoutMs: 30_000,
          ...(command.linkShape === undefined ? {} : { linkShape: command.linkShape }),
        });
        return { reply: 'joined' };
      case 'run':
        return run(command);
      case 'leave':
        await member?.close();
        member = undefined;
        return { reply: 'left' };
      case 'exit':
        await member?.close();
        await server.close();
        process.disconnect();
        return undefined;
    }
  };
  handle().then(
    (reply) => reply && send(reply),
    (error: unknown) => {
      const coded = error as { code?: string; message?: string };
      send({ reply: 'failed', code: coded.code ?? 'ERROR', message: String(coded.message) });
    },
  );
});

send({ reply: 'listening', url: server.url });
