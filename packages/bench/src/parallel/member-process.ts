/**
 * A tensor-parallel member process (allreduce-member.ts) as the benchmark drives it: one
 * command at a time over IPC, each answered by one reply; a failed command rejects with the
 * member's coded error. Stopped on `exit`, or killed if it does not leave.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { SwarmBeeError } from '@swarmbee/core';
import type { MemberCommand, MemberReply } from './allreduce-member.js';

/** The member script beside this module: .ts when running from source (tsx), .js when built. */
const MEMBER_SCRIPT = new URL(
  `./allreduce-member${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);
/** Time a member has to answer a command, ms (a run of slow-link sums takes seconds). */
const COMMAND_TIMEOUT_MS = 120_000;

export class MemberProcess {
  private constructor(
    private readonly child: ChildProcess,
    /** The member's data-plane URL. */
    readonly url: string,
  ) {}

  static async start(token: string): Promise<MemberProcess> {
    const child = fork(MEMBER_SCRIPT, [], {
      env: { ...process.env, SWARMBEE_BENCH_TOKEN: token },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const [first] = (await once(child, 'message')) as [MemberReply];
    if (first.reply !== 'listening') throw new Error(`member process answered ${first.reply}`);
    return new MemberProcess(child, first.url);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  async command<R extends MemberReply['reply']>(
    command: MemberCommand,
    expect: R,
  ): Promise<Extract<MemberReply, { reply: R }>> {
    this.child.send(command);
    const [reply] = (await once(this.child, 'message', {
      signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
    })) as [MemberReply];
    if (reply.reply === 'failed') {
      const error = new SwarmBeeError(reply.message);
      (error as { code: string }).code = reply.code;
      throw error;
    }
    if (reply.reply !== expect) throw new Error(`member answered ${reply.reply}, not ${expect}`);
    return reply as Extract<MemberReply, { reply: R }>;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    try {
      await Promise.all([
        once(this.child, 'exit'),
        // Its IPC channel may be gone already; the timer's kill ends it then.
        new Promise<void>((resolve) => {
          this.child.send({ cmd: 'exit' } satisfies MemberCommand, () => resolve());
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
