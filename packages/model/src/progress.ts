/**
 * Long model operations (import, synth, shard build) report progress through
 * this callback; the CLI renders it as a progress bar, tests ignore it.
 */
export interface ProgressEvent {
  /** What is happening, e.g. "import weights". */
  phase: string;
  /** Units done so far and in total (bytes unless `unit` says otherwise). */
  done: number;
  total: number;
  /** `steps`: anything counted one by one (corpus windows, configurations measured). */
  unit: 'bytes' | 'tensors' | 'layers' | 'files' | 'steps';
}

export type ProgressFn = (event: ProgressEvent) => void;

export const noProgress: ProgressFn = () => {};
