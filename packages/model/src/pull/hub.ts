/**
 * The Hugging Face Hub's file listing (`/api/models/<repo>/tree/<revision>`):
 * every file's size, its git blob id, and for LFS files their sha256 — what
 * downloads are checked against. Pages follow the `Link: <…>; rel="next"` header.
 */
import { DownloadFailedError } from '@swarmbee/core';
import { networkError, statusError } from './errors.js';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';
/** Pages of a listing followed at most (the Hub pages at 1,000 files). */
const MAX_LISTING_PAGES = 50;

export interface HubFile {
  path: string;
  bytes: number;
  /** Git blob sha1. */
  gitOid: string;
  /** sha256 of the content, for LFS (large) files. */
  sha256?: string;
}

export interface HubRepo {
  endpoint: string;
  /** `owner/name`. */
  repo: string;
  revision: string;
  /** Sent as a bearer token to the Hub only (HF_TOKEN), for gated or private models. */
  token?: string;
}

export function hubHeaders(hub: HubRepo): Record<string, string> {
  return hub.token ? { authorization: `Bearer ${hub.token}` } : {};
}

/** URL of one file of a repository at its revision. */
export function resolveUrl(hub: HubRepo, path: string): string {
  const file = path.split('/').map(encodeURIComponent).join('/');
  return `${trimSlash(hub.endpoint)}/${hub.repo}/resolve/${encodeURIComponent(hub.revision)}/${file}`;
}

export async function listHubFiles(hub: HubRepo, signal?: AbortSignal): Promise<HubFile[]> {
  let url: string | undefined =
    `${trimSlash(hub.endpoint)}/api/models/${hub.repo}/tree/${encodeURIComponent(hub.revision)}?recursive=true`;
  const files: HubFile[] = [];
  for (let page = 0; url && page < MAX_LISTING_PAGES; page++) {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { accept: 'application/json', ...hubHeaders(hub) },
        signal: signal ?? null,
      });
    } catch (error) {
      throw networkError(url, error);
    }
    if (!response.ok) throw statusError(url, response, `hf:${hub.repo}`);
    const entries = (await response.json()) as unknown;
    if (!Array.isArray(entries))
      throw new DownloadFailedError(`${url} did not answer with a file listing`);
    for (const entry of entries as Record<string, unknown>[]) {
      if (entry.type !== 'file' || typeof entry.path !== 'string') continue;
      const lfs = entry.lfs as { oid?: unknown; sha256?: unknown } | undefined;
      const sha = lfs?.oid ?? lfs?.sha256;
      files.push({
        path: entry.path,
        bytes: Number(entry.size),
        gitOid: String(entry.oid ?? ''),
        ...(typeof sha === 'string' && /^[0-9a-f]{64}$/i.test(sha) ? { sha256: sha } : {}),
      });
    }
    url = nextPage(response.headers.get('link'), url);
  }
  return files;
}

function nextPage(link: string | null, base: string): string | undefined {
  const match = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return match ? new URL(match[1]!, base).toString() : undefined;
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
