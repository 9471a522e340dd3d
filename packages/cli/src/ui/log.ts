/**
 * Daemon log lines on stderr: time, who, what. In `json` format each line is one JSON
 * object — `{"time","who","message"}`, and for a lifecycle event also `"event"` (its
 * diagnostics channel name) and `"data"` (its payload) — so that tools and tests read
 * events, not prose.
 */
export type LogFormat = 'text' | 'json';

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export interface DaemonLog {
  (line: string): void;
  /** A lifecycle event: its channel name, payload, and the line text shows (none: json only). */
  event(name: string, data: object, line: string | undefined): void;
}

/**
 * Streams whose writes failed (a closed pipe: the terminal or the supervisor that read the
 * log went away). Writing on would fail again, and unobserved each failure is an uncaught
 * exception the fault handler logs, to the same stream: a loop at full CPU. So the first
 * failure ends that stream's log lines and the daemon carries on serving.
 */
const brokenStreams = new WeakSet<NodeJS.WritableStream>();

function observeErrors(stream: NodeJS.WritableStream): void {
  if (stream.listeners('error').includes(markBroken)) return;
  stream.on('error', markBroken);
}

function markBroken(this: NodeJS.WritableStream): void {
  brokenStreams.add(this);
}

export function logger(
  who: string,
  options: { format?: LogFormat; stream?: NodeJS.WritableStream } = {},
): DaemonLog {
  const stream = options.stream ?? process.stderr;
  observeErrors(stream);
  const put = (text: string) => {
    if (!brokenStreams.has(stream)) stream.write(text);
  };
  const time = () => new Date().toISOString();
  const write = (record: object) => {
    put(`${JSON.stringify({ time: time(), who, ...record })}\n`);
  };
  if (options.format === 'json') {
    return Object.assign((message: string) => write({ message }), {
      event: (event: string, data: object, message: string | undefined) =>
        write({ event, ...(message === undefined ? {} : { message }), data }),
    });
  }
  const line = (text: string) => {
    put(`${time()} ${who}: ${text}\n`);
  };
  return Object.assign(line, {
    event: (_event: string, _data: object, text: string | undefined) => {
      if (text !== undefined) line(text);
    },
  });
}

export const logFormatOption = {
  'log-format': {
    choices: LOG_FORMATS,
    default: 'text' as LogFormat,
    describe:
      'Log lines as text, or as JSON objects ({"time","who","message"}; lifecycle events add "event" and "data")',
  },
} as const;

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
