/**
 * The last line of defence for a daemon: an unhandled rejection or uncaught exception is
 * logged with its stack and counted, and the process carries on serving. Every such fault
 * is a bug to fix at its cause (the chaos tests assert the count stays 0); the count is in
 * the coordinator's /metrics (`swarmbee_process_faults_total`) and each worker's stats.
 */

let faults = 0;
let installed = false;

/** Unhandled rejections and uncaught exceptions this process has survived. */
export function processFaults(): number {
  return faults;
}

/** Installs the handlers once per process; later calls do nothing. */
export function installFaultHandlers(log: (line: string) => void): void {
  if (installed) return;
  installed = true;
  const report = (kind: string) => (error: unknown) => {
    faults++;
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`BUG: ${kind} #${faults} (the process carries on): ${detail}`);
  };
  process.on('unhandledRejection', report('unhandled rejection'));
  process.on('uncaughtException', report('uncaught exception'));
}
