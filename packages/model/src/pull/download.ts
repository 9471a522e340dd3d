/**
 * One file over HTTP(S) with Node's fetch: into `<dest>.partial`, resumed with a
 * Range request after a dropped connection (in this run, or the next), checked
 * against the size and hash the server or catalogue gives, then renamed into place.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat, truncate } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortedError,
  DownloadChecksumError,
  DownloadFailedError,
  NetworkUnavailableError,
  type SwarmBeeError,
} from '@swarmbee/core';
import { noProgress, type ProgressFn } from '../progress.js';
import { networkError, statusError } from './errors.js';

/** Attempts after a network failure, each resuming where the last stopped. */
export const DEFAULT_DOWNLOAD_RETRIES = 3;
/** First pause before a retry; doubled per retry. */
export const RETRY_DELAY_MS = 500;
/** A connection that delivers nothing (headers or body) for this long is dropped and resumed. */
export const DOWNLOAD_STALL_TIMEOUT_MS = 30_000;

/** What a file must be; whichever is known is checked. */
export interface ExpectedFile {
  bytes?: number;
  sha256?: string;
  /** Git's blob id (sha1 of "blob <size>\0" + content): what the Hub lists for small files. */
  gitBlobSha1?: string;
}

export interface DownloadOptions {
  url: string;
  dest: string;
  expected?: ExpectedFile;
  headers?: Record<string, string>;
  /** Default {@link DEFAULT_DOWNLOAD_RETRIES}. */
  retries?: number;
  /** Default {@link DOWNLOAD_STALL_TIMEOUT_MS}. */
  stallTimeoutMs?: number;
  progress?: ProgressFn;
  /** Progress phase label; default the file's URL path. */
  label?: string;
  signal?: AbortSignal;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
  /** What the content was checked against. */
  verified: 'sha256' | 'git-sha1' | 'size' | 'nothing';
  /** Bytes taken from an earlier partial download instead of fetched again. */
  resumedFrom: number;
}

export async function downloadFile(options: DownloadOptions): Promise<DownloadedFile> {
  const { url, dest } = options;
  const expected = options.expected ?? {};
  const partial = `${dest}.partial`;
  const retries = options.retries ?? DEFAULT_DOWNLOAD_RETRIES;
  const label = options.label ?? new URL(url).pathname.split('/').pop() ?? url;
  if ((await sizeOf(dest)) >= 0) return verify(dest, dest, expected, url, 0);
  let resumedFrom = 0;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await fetchInto(url, partial, expected, options, label, (start) => {
        if (resumedFrom === 0) resumedFrom = start;
      });
      break;
    } catch (error) {
      if (options.signal?.aborted)
        throw new AbortedError(`download of ${url} was cancelled`, { cause: error });
      if (!(error instanceof NetworkUnavailableError) && !(error as SwarmBeeError).retryable)
        throw error;
      if (attempt >= retries) {
        const have = Math.max(0, await sizeOf(partial));
        throw new NetworkUnavailableError(
          `${(error as Error).message}; ${have} bytes of ${label} are kept in ${partial}: run the same command again to resume`,
          { cause: error },
        );
      }
      await sleep(RETRY_DELAY_MS * 2 ** attempt, undefined, { signal: options.signal }).catch(
        () => {},
      );
    }
  }
  return verify(partial, dest, expected, url, resumedFrom);
}

async function fetchInto(
  url: string,
  partial: string,
  expected: ExpectedFile,
  options: DownloadOptions,
  label: string,
  onResume: (start: number) => void,
): Promise<void> {
  let start = Math.max(0, await sizeOf(partial));
  if (expected.bytes !== undefined && start > expected.bytes) {
    await rm(partial, { force: true });
    start = 0;
  }
  if (expected.bytes !== undefined && start === expected.bytes) return;
  const stall = new AbortController();
  const stallMs = options.stallTimeoutMs ?? DOWNLOAD_STALL_TIMEOUT_MS;
  let timer = setTimeout(() => stall.abort(), stallMs);
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), stallMs);
  };
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal;
  try {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { ...options.headers, ...(start > 0 ? { range: `bytes=${start}-` } : {}) },
        signal,
      });
    } catch (error) {
      throw networkError(url, error, stall.signal.aborted ? stallMs : undefined);
    }
    if (response.status === 416 && start > 0) {
      // Nothing past what we hold: complete if the sizes agree, else start over.
      await response.body?.cancel();
      if (expected.bytes === undefined || expected.bytes === start) return;
      await truncate(partial, 0);
      throw new DownloadFailedError(`${url} refused to resume at byte ${start}`, {
        retryable: true,
      });
    }
    if (!response.ok) throw statusError(url, response);
    if (start > 0 && response.status !== 206) {
      await truncate(partial, 0); // the server ignored the Range: it sends everything again
      start = 0;
    }
    if (start > 0) onResume(start);
    const length = Number(response.headers.get('content-length') ?? Number.NaN);
    const total = expected.bytes ?? (Number.isFinite(length) ? start + length : 0);
    let done = start;
    const progress = options.progress ?? noProgress;
    progress({ phase: `download ${label}`, done, total, unit: 'bytes' });
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
    body.on('data', (chunk: Buffer) => {
      kick();
      done += chunk.length;
      progress({ phase: `download ${label}`, done, total, unit: 'bytes' });
    });
    try {
      await pipeline(body, createWriteStream(partial, { flags: start > 0 ? 'a' : 'w' }));
    } catch (error) {
      throw networkError(url, error, stall.signal.aborted ? stallMs : undefined);
    }
    if (Number.isFinite(length) && done !== start + length)
      throw new NetworkUnavailableError(
        `${url}: the connection closed after ${done - start} of ${length} bytes`,
      );
  } finally {
    clearTimeout(timer);
  }
}

async function verify(
  from: string,
  dest: string,
  expected: ExpectedFile,
  url: string,
  resumedFrom: number,
): Promise<DownloadedFile> {
  const bytes = await sizeOf(from);
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1').update(`blob ${bytes}\0`);
  for await (const chunk of createReadStream(from, { highWaterMark: 1 << 22 })) {
    sha256.update(chunk as Buffer);
    sha1.update(chunk as Buffer);
  }
  const digest = sha256.digest('hex');
  const gitSha1 = sha1.digest('hex');
  let wrong: [string, string | number, string | number] | undefined;
  if (expected.bytes !== undefined && bytes !== expected.bytes)
    wrong = ['the size in bytes', expected.bytes, bytes];
  else if (expected.sha256 && digest !== expected.sha256.toLowerCase())
    wrong = ['the sha256', expected.sha256, digest];
  else if (expected.gitBlobSha1 && gitSha1 !== expected.gitBlobSha1.toLowerCase())
    wrong = ['the git blob sha1', expected.gitBlobSha1, gitSha1];
  if (wrong) {
    await rm(from, { force: true });
    throw new DownloadChecksumError(
      `${url}: ${wrong[0]} is ${wrong[2]} but should be ${wrong[1]}; the download was removed, run again to fetch it anew`,
    );
  }
  if (from !== dest) await rename(from, dest);
  const verified = expected.sha256
    ? 'sha256'
    : expected.gitBlobSha1
      ? 'git-sha1'
      : expected.bytes !== undefined
        ? 'size'
        : 'nothing';
  return { path: dest, bytes, sha256: digest, verified, resumedFrom };
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => -1,
  );
}
