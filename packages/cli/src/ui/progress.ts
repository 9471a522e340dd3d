/** Progress bars on stderr for long operations; silent when stderr is not a terminal. */
import type { ProgressEvent, ProgressFn } from '@swarmbee/model';
import cliProgress from 'cli-progress';

export interface ProgressDisplay {
  report: ProgressFn;
  stop(): void;
}

const UNIT_SCALE: Record<ProgressEvent['unit'], { divisor: number; label: string }> = {
  bytes: { divisor: 1024 * 1024, label: 'MiB' },
  tensors: { divisor: 1, label: 'tensors' },
  layers: { divisor: 1, label: 'layers' },
  files: { divisor: 1, label: 'files' },
  steps: { divisor: 1, label: 'steps' },
};

export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  if (!stream.isTTY) return { report: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{phase} [{bar}] {percentage}% | {value}/{total} {unit}{rate} | {eta_formatted} left',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let phase: string | undefined;
  let started = 0;
  let startDone = 0;
  return {
    report(event) {
      const { divisor, label } = UNIT_SCALE[event.unit];
      const value = Math.round(event.done / divisor);
      const total = Math.max(1, Math.round(event.total / divisor));
      if (event.phase !== phase) {
        if (phase !== undefined) bar.stop();
        phase = event.phase;
        started = performance.now();
        startDone = event.done;
        bar.start(total, value, { phase, unit: label, rate: '' });
      } else {
        bar.update(value, { rate: rateOf(event, started, startDone) });
      }
    },
    stop() {
      if (phase !== undefined) bar.stop();
    },
  };
}

/** ` | 123 MB/s` for byte counts (decimal megabytes per second since the phase began); empty otherwise. */
export function rateOf(event: ProgressEvent, startedMs: number, startDone: number): string {
  const seconds = (performance.now() - startedMs) / 1000;
  if (event.unit !== 'bytes' || seconds <= 0) return '';
  return ` | ${((event.done - startDone) / 1e6 / seconds).toFixed(0)} MB/s`;
}

/** Runs `task` with a progress bar that is always cleared afterwards. */
export async function withProgress<T>(task: (report: ProgressFn) => Promise<T>): Promise<T> {
  const display = progressBar();
  try {
    return await task(display.report);
  } finally {
    display.stop();
  }
}
