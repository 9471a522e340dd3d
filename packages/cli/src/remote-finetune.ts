/**
 * `swarmbee finetune --url`: the same run on a running cluster. The data (and evaluation
 * sets) go to the coordinator, which trains over its deployed stages and streams the
 * progress back; the adapter's PEFT files arrive at the end and are written to `--out`
 * here. Ctrl-C closes the stream, which stops the run after its current step.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type ApiTarget, getJson, postEvents } from '@swarmbee/coordinator/client';
import { AbortedError, OutputExistsError } from '@swarmbee/core';
import type { FinetuneEvent, FinetuneResult, FinetuneSettings } from '@swarmbee/train';

/** The `result` event of `POST /swarmbee/finetune` (see the coordinator's api/finetune.ts). */
interface FinetuneResultEvent {
  type: 'result';
  result: Omit<FinetuneResult, 'adapterDir' | 'checkpoint'>;
  placement: string[];
  adapter?: { name: string; base64: string }[];
}

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

export async function finetuneRemote(run: RemoteFinetuneRun): Promise<RemoteFinetuneResult> {
  const entries = await readdir(run.out).catch(() => [] as string[]);
  if (entries.length > 0)
    throw new OutputExistsError(`${run.out} is not empty: choose another --out`);
  const evalData = [];
  for (const path of run.evalData)
    evalData.push({ name: basename(path), text: await readFile(path, 'utf8') });
  let result: FinetuneResultEvent | undefined;
  try {
    await postEvents<FinetuneEvent | FinetuneResultEvent>(
      run.target,
      '/swarmbee/finetune',
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
      { signal: run.signal },
    );
  } catch (error) {
    if (run.signal.aborted)
      throw new AbortedError('stopped: the coordinator ends the run after its current step');
    throw error;
  }
  if (!result) throw new AbortedError('the coordinator ended the stream without a result');
  if (!result.adapter) return result;
  await mkdir(run.out, { recursive: true });
  for (const file of result.adapter)
    await writeFile(join(run.out, basename(file.name)), Buffer.from(file.base64, 'base64'));
  return { ...result, adapterDir: run.out };
}
