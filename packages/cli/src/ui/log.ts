/** Daemon log lines on stderr: time, who, what. */
export function logger(
  who: string,
  stream: NodeJS.WriteStream = process.stderr,
): (line: string) => void {
  return (line) => stream.write(`${new Date().toISOString()} ${who}: ${line}\n`);
}

/** How long a daemon may take to stop after SIGTERM or SIGINT before it exits anyway, ms. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export const shutdownGraceOption = {
  'shutdown-grace-ms': {
    type: 'number',
    describe: `After SIGTERM or SIGINT, time to stop cleanly before exiting anyway, ms (default ${DEFAULT_SHUTDOWN_GRACE_MS}); a second signal exits at once`,
  },
} as const;

/**
 * Resolves on the first SIGINT or SIGTERM, and from then on guarantees the process ends:
 * if it is still running `graceMs` later (a stop that hangs, or a failed start that left
 * something open) it exits with code 1, and a second signal exits at once. Either way one
 * line on the log says so.
 * @neverRejects
 */
export function untilSignal(
  options: { graceMs?: number; log?: (line: string) => void } = {},
): Promise<NodeJS.Signals> {
  const graceMs = options.graceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const log = options.log ?? logger('swarmbee');
  return new Promise((resolve) => {
    let first: NodeJS.Signals | undefined;
    const on = (signal: NodeJS.Signals) => {
      if (first) {
        log(`${signal} again: exiting now`);
        process.exit(1);
      }
      first = signal;
      // Unreferenced: a process that stops in time exits without waiting for it.
      setTimeout(() => {
        log(`still running ${graceMs} ms after ${signal} (--shutdown-grace-ms): exiting`);
        process.exit(1);
      }, graceMs).unref();
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
