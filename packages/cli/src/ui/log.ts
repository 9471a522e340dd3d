/** Daemon log lines on stderr: time, who, what. */
export function logger(
  who: string,
  stream: NodeJS.WriteStream = process.stderr,
): (line: string) => void {
  return (line) => stream.write(`${new Date().toISOString()} ${who}: ${line}\n`);
}

/**
 * Resolves on the first SIGINT or SIGTERM.
 * @neverRejects
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
