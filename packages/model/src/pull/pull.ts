/**
 * `swarmbee model pull`: download a published model (a llama2.c checkpoint by
 * name, a Hugging Face repository, or one GGUF file of one), check every file, then
 * import it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  HfCheckpointInvalidError,
  InvalidArgumentError,
  type WeightQuantization,
} from '@swarmbee/core';
import { importGguf } from '../gguf/import.js';
import type { GgufRequantizeTarget } from '../gguf/tensor-plan.js';
import {
  HF_CONFIG_FILE,
  HF_GENERATION_CONFIG_FILE,
  HF_SAFETENSORS_FILE,
  HF_SAFETENSORS_INDEX_FILE,
} from '../hf/checkpoint.js';
import { importHf } from '../hf/import.js';
import { importLlama2c } from '../llama2c/import.js';
import { cacheRoot } from '../model-cache.js';
import type { ModelDir } from '../model-dir.js';
import type { ProgressFn } from '../progress.js';
import { CHAT_TEMPLATE_FILE } from '../tokenizer/chat-template.js';
import { HF_TOKENIZER_CONFIG_FILE, HF_TOKENIZER_FILE } from '../tokenizer/hf-tokenizer.js';
import { DEFAULT_LLAMA2C_URL, type Llama2cCatalogEntry, parsePullTarget } from './catalog.js';
import { type DownloadedFile, downloadFile, type ExpectedFile } from './download.js';
import {
  DEFAULT_HF_ENDPOINT,
  type HubFile,
  type HubRepo,
  hubHeaders,
  listHubFiles,
  resolveUrl,
  trimSlash,
} from './hub.js';

export interface PullOptions {
  /** A known name (stories15M, …), `hf:owner/name[@revision]`, or a huggingface.co URL. */
  target: string;
  out: string;
  /** Hub base URL. Default `$SWARMBEE_HF_ENDPOINT`, `$HF_ENDPOINT`, then https://huggingface.co. */
  hubUrl?: string;
  /** Base URL of llama2.c's files. Default `$SWARMBEE_LLAMA2C_URL`, then {@link DEFAULT_LLAMA2C_URL}. */
  llama2cUrl?: string;
  /** Where downloads (and their `.partial` files) go. Default `<cache>/downloads/<model>`. */
  downloadDir?: string;
  /** Bearer token for gated or private Hub models. Default `$HF_TOKEN`. */
  token?: string;
  /** Network retries per file, each resuming. Default 3. */
  retries?: number;
  /** Context to record for a Hugging Face or GGUF model (see `importHf`, `importGguf`). */
  contextLength?: number;
  /**
   * A GGUF file of the Hub repository to download and import (`NAME.gguf`, or its path in
   * the repository) instead of its safetensors checkpoint.
   */
  file?: string;
  /** GGUF: what tensors that cannot be mapped without loss become (see `importGguf`). */
  requantize?: GgufRequantizeTarget;
  /** GGUF: how quantized matmuls treat activations (see `importGguf`). */
  activations?: WeightQuantization['activations'];
  name?: string;
  progress?: ProgressFn;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface PullResult {
  dir: ModelDir;
  downloadDir: string;
  files: DownloadedFile[];
}

export async function pullModel(options: PullOptions): Promise<PullResult> {
  const env = options.env ?? process.env;
  const endpoint = trimSlash(
    options.hubUrl ?? env.SWARMBEE_HF_ENDPOINT ?? env.HF_ENDPOINT ?? DEFAULT_HF_ENDPOINT,
  );
  const target = parsePullTarget(options.target, endpoint);
  const slug = target.kind === 'hf' ? target.repo.replace('/', '--') : target.name;
  const downloadDir = options.downloadDir ?? join(cacheRoot(env), 'downloads', slug);
  await mkdir(downloadDir, { recursive: true });
  const token = options.token ?? env.HF_TOKEN;
  const common = {
    retries: options.retries,
    progress: options.progress,
    signal: options.signal,
  };
  if (target.kind === 'llama2c' && options.file !== undefined)
    throw new InvalidArgumentError(
      `--file picks a file of a Hugging Face repository (hf:OWNER/NAME); ${options.target} is a llama2.c model`,
    );
  if (target.kind === 'llama2c') {
    const hub: HubRepo = {
      endpoint,
      repo: target.entry.repo,
      revision: 'main',
      ...(token ? { token } : {}),
    };
    const llama2cUrl = trimSlash(
      options.llama2cUrl ?? env.SWARMBEE_LLAMA2C_URL ?? DEFAULT_LLAMA2C_URL,
    );
    const files = await pullLlama2c(hub, target.entry, llama2cUrl, downloadDir, common);
    const dir = await importLlama2c({
      checkpoint: files[0]!.path,
      tokenizer: files[1]!.path,
      out: options.out,
      name: options.name ?? target.name,
      progress: options.progress,
    });
    return { dir, downloadDir, files };
  }
  const hub: HubRepo = {
    endpoint,
    repo: target.repo,
    revision: target.revision,
    ...(token ? { token } : {}),
  };
  if (options.file !== undefined) {
    const gguf = await pullGgufFile(hub, options.file, downloadDir, common);
    const dir = await importGguf({
      file: gguf.path,
      out: options.out,
      name: options.name ?? basename(gguf.path).replace(/\.gguf$/i, ''),
      repo: target.repo,
      progress: options.progress,
      ...(options.requantize ? { requantize: options.requantize } : {}),
      ...(options.activations ? { activations: options.activations } : {}),
      ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
    });
    return { dir, downloadDir, files: [gguf] };
  }
  const files = await pullHfRepo(hub, downloadDir, common);
  const dir = await importHf({
    dir: downloadDir,
    out: options.out,
    name: options.name ?? target.repo.split('/')[1]!,
    repo: target.repo,
    progress: options.progress,
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
  });
  return { dir, downloadDir, files };
}

type Common = Pick<PullOptions, 'retries' | 'progress' | 'signal'>;

function expectation(file: HubFile): ExpectedFile {
  return file.sha256
    ? { bytes: file.bytes, sha256: file.sha256 }
    : { bytes: file.bytes, ...(file.gitOid ? { gitBlobSha1: file.gitOid } : {}) };
}

async function pullLlama2c(
  hub: HubRepo,
  entry: Llama2cCatalogEntry,
  llama2cUrl: string,
  downloadDir: string,
  common: Common,
): Promise<DownloadedFile[]> {
  const listing = await listHubFiles(hub, common.signal);
  const fetchFromHub = async (path: string, knownBytes?: number) => {
    const file = listing.find((f) => f.path === path);
    if (!file)
      throw new HfCheckpointInvalidError(`${hub.repo} on ${hub.endpoint} no longer lists ${path}`);
    if (knownBytes !== undefined && file.bytes !== knownBytes)
      throw new HfCheckpointInvalidError(
        `${hub.repo} lists ${path} at ${file.bytes} bytes; the published checkpoint is ${knownBytes} bytes`,
      );
    return downloadFile({
      ...common,
      url: resolveUrl(hub, path),
      dest: join(downloadDir, path.split('/').pop()!),
      expected: expectation(file),
      headers: hubHeaders(hub),
      label: path.split('/').pop()!,
    });
  };
  const checkpoint = await fetchFromHub(entry.checkpoint, entry.bytes);
  const tokenizer =
    'repoPath' in entry.tokenizer
      ? await fetchFromHub(entry.tokenizer.repoPath)
      : // Not on the Hub, so no published hash: the import parses it against the vocabulary size.
        await downloadFile({
          ...common,
          url: `${llama2cUrl}/${entry.tokenizer.llama2cPath}`,
          dest: join(downloadDir, entry.tokenizer.llama2cPath),
        });
  return [checkpoint, tokenizer];
}

/** One GGUF file of a repository, named by its path or its file name, downloaded and checked. */
async function pullGgufFile(
  hub: HubRepo,
  file: string,
  downloadDir: string,
  common: Common,
): Promise<DownloadedFile> {
  if (!/\.gguf$/i.test(file))
    throw new InvalidArgumentError(
      `--file ${file} is not a .gguf file; SwarmBee pulls single GGUF files`,
    );
  const listing = await listHubFiles(hub, common.signal);
  const matches = listing.filter((f) => f.path === file || basename(f.path) === file);
  if (matches.length !== 1) {
    const ggufs = listing.map((f) => f.path).filter((p) => /\.gguf$/i.test(p));
    throw new HfCheckpointInvalidError(
      `hf:${hub.repo} has ${matches.length === 0 ? 'no' : 'more than one'} file ${file}` +
        (ggufs.length > 0
          ? `; its GGUF files: ${ggufs.slice(0, 8).join(', ')}`
          : '; it has no GGUF files'),
    );
  }
  const entry = matches[0]!;
  return downloadFile({
    ...common,
    url: resolveUrl(hub, entry.path),
    dest: join(downloadDir, basename(entry.path)),
    expected: expectation(entry),
    headers: hubHeaders(hub),
    label: entry.path,
  });
}

async function pullHfRepo(
  hub: HubRepo,
  downloadDir: string,
  common: Common,
): Promise<DownloadedFile[]> {
  const listing = await listHubFiles(hub, common.signal);
  const byPath = new Map(listing.map((f) => [f.path, f]));
  const fetchFile = async (path: string) =>
    downloadFile({
      ...common,
      url: resolveUrl(hub, path),
      dest: join(downloadDir, path),
      expected: expectation(byPath.get(path)!),
      headers: hubHeaders(hub),
      label: path,
    });
  const required = [HF_CONFIG_FILE, HF_TOKENIZER_FILE];
  for (const path of required)
    if (!byPath.has(path))
      throw new HfCheckpointInvalidError(
        `hf:${hub.repo} has no ${path}; SwarmBee imports Hugging Face checkpoints with ${required.join(' and ')}`,
      );
  const optional = [HF_GENERATION_CONFIG_FILE, HF_TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE].filter(
    (p) => byPath.has(p),
  );
  const files: DownloadedFile[] = [];
  for (const path of [...required, ...optional]) files.push(await fetchFile(path));
  let weights: string[];
  if (byPath.has(HF_SAFETENSORS_INDEX_FILE)) {
    const index = await fetchFile(HF_SAFETENSORS_INDEX_FILE);
    files.push(index);
    const map = (JSON.parse(await readFile(index.path, 'utf8')) as { weight_map?: object })
      .weight_map;
    weights = [...new Set(Object.values(map ?? {}) as string[])];
    const unsafe = weights.filter(
      (w) => typeof w !== 'string' || /[/\\]/.test(w) || w.startsWith('.'),
    );
    if (unsafe.length > 0)
      throw new HfCheckpointInvalidError(
        `hf:${hub.repo}: the index names files outside the repository root: ${unsafe.join(', ')}`,
      );
    const missing = weights.filter((w) => !byPath.has(w));
    if (missing.length > 0)
      throw new HfCheckpointInvalidError(
        `hf:${hub.repo}: the index names ${missing.join(', ')}, which the repository lacks`,
      );
  } else if (byPath.has(HF_SAFETENSORS_FILE)) {
    weights = [HF_SAFETENSORS_FILE];
  } else {
    const other = listing
      .map((f) => f.path)
      .filter((p) => /\.(bin|pt|pth|gguf|safetensors)$/.test(p));
    throw new HfCheckpointInvalidError(
      `hf:${hub.repo} has no ${HF_SAFETENSORS_FILE} or ${HF_SAFETENSORS_INDEX_FILE}` +
        (other.length > 0
          ? ` (it has ${other.slice(0, 5).join(', ')}); SwarmBee reads safetensors`
          : ''),
    );
  }
  for (const path of weights) files.push(await fetchFile(path));
  return files;
}
