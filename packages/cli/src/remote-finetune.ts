/**
 * `swarmbee finetune --url`: the same run on a running cluster. The data (and evaluation
 * sets) go to the coordinator, which trains over its deployed stages and streams the
 * progress back; the adapter's PEFT files arrive at the end and are written to `--out`
 * here. Ctrl-C closes the stream, which stops the run after its current step.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { FinetuneStreamEvent } from '@swarmbee/coordinator';
import { type ApiTarget, getJson, postEvents } from '@swarmbee/coordinator/client';
import { AbortedError, OutputExistsError } from '@swarmbee/core';
import type { FinetuneEvent, FinetuneSettings } from '@swarmbee/train';

/** The `result` event of `POST /swarmbee/finetune` (see the coordinator's api/finetune.ts). */
type FinetuneResultEvent = Extract<FinetuneStreamEvent, { type: 'result' }>;

export interface RemoteFinetuneRun {
  target: ApiTarget;
  data: string;
  evalData: string[];
  out: string;
  settings: FinetuneSettings;
  pinPrivate: boolean;
  onEvent: (event: FinetuneEvent) => void;
  signal: AbortSignal;
}

export interface RemoteFinetuneResult extends FinetuneResultEvent {
  adapterDir?: string;
}

/** The context the cluster serves, tokens (`/swarmbee/cluster`'s maxSeqLen). */
export async function clusterContext(target: ApiTarget): Promise<number> {
  return (await getJson<{ maxSeqLen: number }>(target, '/swarmbee/cluster')).maxSeqLen;
}

/** Refuses an `--out` that holds anything, before the cluster does any work. */
export async function assertEmptyOut(out: string): Promise<void> {
  if ((await readdir(out).catch(() => [] as string[])).length > 0)
    throw new OutputExistsError(`${out} is not empty: choose another --out`);
}

/** Writes the adapter's files the coordinator answered with into `out`. */
export async function writeAdapterFiles(
  out: string,
  files: readonly { name: string; base64: string }[],
): Promise<void> {
  await mkdir(out, { recursive: true });
  for (const file of files)
    await writeFile(join(out, basename(file.name)), Buffer.from(file.base64, 'base64'));
}

/**
 * POSTs a fine-tuning job and hands each event to `onEvent`; a stream the user stopped
 * (`signal`) ends with AbortedError saying what the coordinator does (`stopped`).
 */
export async function streamJob<E extends FinetuneStreamEvent>(
  target: ApiTarget,
  body: unknown,
  onEvent: (event: E) => void,
  signal: AbortSignal,
  stopped: string,
): Promise<void> {
  try {
    await postEvents<E>(target, '/swarmbee/finetune', body, onEvent, { signal });
  } catch (error) {
    if (signal.aborted) throw new AbortedError(`stopped: ${stopped}`);
    throw error;
  }
}

export async function finetuneRemote(run: RemoteFinetuneRun): Promise<RemoteFinetuneResult> {
  await assertEmptyOut(run.out);
  const evalData = [];
  for (const path of run.evalData)
    evalData.push({ name: basename(path), text: await readFile(path, 'utf8') });
  let result: FinetuneResultEvent | undefined;
  await streamJob<FinetuneEvent | FinetuneResultEvent>(
    run.target,
    {
      settings: run.settings,
      data: await readFile(run.data, 'utf8'),
      ...(evalData.length > 0 ? { eval_data: evalData } : {}),
      pin_private: run.pinPrivate,
    },
    (event) => {
      if (event.type === 'result') result = event;
      else run.onEvent(event);
    },
    run.signal,
    'the coordinator ends the run after its current step',
  );
  if (!result) throw new AbortedError('the coordinator ended the stream without a result');
  if (!result.adapter) return result;
  await writeAdapterFiles(run.out, result.adapter);
  return { ...result, adapterDir: run.out };
}
