/**
 * Published llama2.c checkpoints `swarmbee model pull` knows by name, and how a
 * pull target (a name, `hf:owner/name[@revision]`, or a Hub URL) is read.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { DEFAULT_HF_ENDPOINT, trimSlash } from './hub.js';

/** Where llama2.c's own files (its 32,000-token `tokenizer.bin`) are served. */
export const DEFAULT_LLAMA2C_URL = 'https://raw.githubusercontent.com/karpathy/llama2.c/master';

export interface Llama2cCatalogEntry {
  description: string;
  /** Hub repository and path of the checkpoint. */
  repo: string;
  checkpoint: string;
  /**
   * Size of the published checkpoint in bytes: the v0 header implies it exactly
   * (7 int32 fields, the weights, run.c's RoPE tables).
   */
  bytes: number;
  /** The tokenizer: a file in the same repository, or llama2.c's `tokenizer.bin`. */
  tokenizer: { repoPath: string } | { llama2cPath: string };
}

export const LLAMA2C_CATALOG: Record<string, Llama2cCatalogEntry> = {
  stories260K: {
    description: 'dim 64, 5 layers, 512-token vocabulary (tok512)',
    repo: 'karpathy/tinyllamas',
    checkpoint: 'stories260K/stories260K.bin',
    bytes: 1_056_540,
    tokenizer: { repoPath: 'stories260K/tok512.bin' },
  },
  stories15M: {
    description: 'dim 288, 6 layers, 6 heads, context 256, 32,000-token vocabulary',
    repo: 'karpathy/tinyllamas',
    checkpoint: 'stories15M.bin',
    bytes: 60_816_028,
    tokenizer: { llama2cPath: 'tokenizer.bin' },
  },
  stories42M: {
    description: 'dim 512, 8 layers, 8 heads, context 1024, 32,000-token vocabulary',
    repo: 'karpathy/tinyllamas',
    checkpoint: 'stories42M.bin',
    bytes: 167_020_572,
    tokenizer: { llama2cPath: 'tokenizer.bin' },
  },
  stories110M: {
    description: 'dim 768, 12 layers, 12 heads, context 1024, 32,000-token vocabulary',
    repo: 'karpathy/tinyllamas',
    checkpoint: 'stories110M.bin',
    bytes: 438_381_596,
    tokenizer: { llama2cPath: 'tokenizer.bin' },
  },
};

export type PullTarget =
  | { kind: 'llama2c'; name: string; entry: Llama2cCatalogEntry }
  | { kind: 'hf'; repo: string; revision: string };

/**
 * Reads what to pull: a catalogue name, `hf:owner/name[@revision]`, or a URL of a
 * repository on huggingface.co or on `endpoint` (`…/owner/name[/tree/revision]`).
 */
export function parsePullTarget(
  target: string,
  endpoint: string = DEFAULT_HF_ENDPOINT,
): PullTarget {
  const known = Object.keys(LLAMA2C_CATALOG).find((n) => n.toLowerCase() === target.toLowerCase());
  if (known) return { kind: 'llama2c', name: known, entry: LLAMA2C_CATALOG[known]! };
  if (target.startsWith('hf:')) {
    const [repo, revision] = target.slice(3).split('@') as [string, string | undefined];
    return hfTarget(repo, revision ?? 'main', target);
  }
  if (/^https?:\/\//.test(target)) {
    const url = new URL(target);
    const hosts = [new URL(DEFAULT_HF_ENDPOINT).origin, new URL(trimSlash(endpoint)).origin];
    if (!hosts.includes(url.origin))
      throw new InvalidArgumentError(
        `${target} is not on the Hugging Face Hub (${hosts.join(' or ')}); give hf:owner/name or a known name`,
      );
    const base = new URL(trimSlash(endpoint)).pathname.replace(/\/+$/, '');
    const parts = url.pathname
      .slice(url.origin === hosts[1] ? base.length : 0)
      .split('/')
      .filter(Boolean);
    const revision = parts[2] === 'tree' || parts[2] === 'resolve' ? parts[3] : undefined;
    return hfTarget(parts.slice(0, 2).join('/'), revision ?? 'main', target);
  }
  throw new InvalidArgumentError(
    `${JSON.stringify(target)} is neither a known model (${Object.keys(LLAMA2C_CATALOG).join(', ')}) ` +
      'nor hf:owner/name nor a huggingface.co URL',
  );
}

function hfTarget(repo: string, revision: string, target: string): PullTarget {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo) || revision.length === 0)
    throw new InvalidArgumentError(
      `${target}: a Hugging Face model is named owner/name (optionally @revision)`,
    );
  return { kind: 'hf', repo, revision };
}
