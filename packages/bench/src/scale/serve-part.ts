/**
 * The serving part of the scale benchmark (issue 16, items 5 and 7): for each model, clusters
 * of 1, 2 and 3 worker processes on loopback (even splits), and per worker its shard's bytes,
 * its load time and its peak RSS (VmHWM, read from /proc) against shard + KV budget + 250 MB;
 * decode tokens/s for one stream and for 8 against the memory roofline (tokens/s × weight bytes
 * ÷ copy bandwidth measured in the same run); time to first token of a long prompt.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { shardDirName } from '@swarmbee/coordinator';
import type { ModelManifest } from '@swarmbee/core';
import { arenaCapacity } from '@swarmbee/engine';
import { LocalCluster } from '@swarmbee/local-cluster';
import { type ModelDir, SHARD_FORMAT_VERSION } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { timedCompletion } from '../cluster-bench/client.js';
import { promptIds, steadyRate } from '../cluster-bench/scenario.js';

/** What a worker may hold beyond its shard and its KV budget (issue 16's target). */
export const WORKER_OVERHEAD_TARGET_BYTES = 250 * 10 ** 6;

export interface ServePartOptions {
  models: { label: string; dir: ModelDir }[];
  /** Worker counts to serve each model with. Default [1, 2, 3]. */
  workers?: number[];
  /** Concurrent streams decoding. Default [1, 8]. */
  streams?: number[];
  /** Tokens each decode stream generates. Default 32. */
  decodeTokens?: number;
  /** Prompt tokens of the time-to-first-token request. Default 512. */
  promptTokens?: number;
  /**
   * Context the clusters serve (the coordinator's `--context`), tokens: each shard's RoPE
   * tables hold this many positions. Default {@link SERVE_CONTEXT_TOKENS}.
   */
  contextTokens?: number;
  /** Copy bandwidth measured in the same run, bytes/s (the roofline's yardstick). */
  bandwidthBytesPerS: number;
  cliBin: string;
  cacheDir: string;
  progress: (line: string) => void;
}

export interface WorkerLoadRow {
  model: string;
  workers: number;
  worker: string;
  layers: string;
  shardBytes: number;
  /** The worker's `--kv-budget-mib`: what the runs below can fill of the whole model. */
  kvBudgetBytes: number;
  /** KV bytes this stage's layers hold when the runs fill their arenas most. */
  kvBytes: number;
  loadMs: number;
  peakRssBytes: number;
  /** Peak RSS − shard − the KV the stage held at most: the constant the 250 MB target bounds. */
  overheadBytes: number;
}

export interface ServeSpeedRow {
  model: string;
  workers: number;
  streams: number;
  tokensPerS: number;
  /** tokens/s × weight bytes ÷ copy bandwidth: the share of the memory roofline reached. */
  roofline: number;
  /** Median time to first token of the long prompt, ms (measured once per cluster). */
  ttftMs: number;
}

/** The context the serve part deploys with, tokens: a 4k-token deployment of a 128k-context model. */
export const SERVE_CONTEXT_TOKENS = 4096;

/** Short prompts for decode streams, so decode dominates their time. */
const DECODE_PROMPT_TOKENS = 16;

/** Peak resident bytes of a process (Linux), from /proc. */
async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kib) * 1024;
}

/** KV bytes per position of the layers [start, end): keys and values, fp32. */
function kvBytesPerPosition(dir: ModelDir, start: number, end: number): number {
  return dir.manifest.layers.slice(start, end).reduce((sum, l) => sum + l.kvBytesPerToken, 0);
}

async function dirBytes(path: string, files: readonly string[]): Promise<number> {
  const sizes = await Promise.all(files.map(async (f) => (await stat(join(path, f))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

export async function servePart(
  options: ServePartOptions,
): Promise<{ load: WorkerLoadRow[]; speed: ServeSpeedRow[] }> {
  const load: WorkerLoadRow[] = [];
  const speed: ServeSpeedRow[] = [];
  const streamCounts = options.streams ?? [1, 8];
  const decodeTokens = options.decodeTokens ?? 32;
  const promptTokens = options.promptTokens ?? 512;
  const cores = availableParallelism();
  for (const { label, dir } of options.models) {
    const { config, modelHash } = dir.manifest;
    const context = Math.min(options.contextTokens ?? SERVE_CONTEXT_TOKENS, config.maxSeqLen);
    // The KV cache the runs fill at most: 8 rows of a decode arena, or the long prompt alone.
    const mostRows = Math.max(...streamCounts);
    const positions = Math.max(
      mostRows * arenaCapacity(DECODE_PROMPT_TOKENS + decodeTokens, context),
      arenaCapacity(promptTokens + 1, context),
    );
    for (const workers of options.workers ?? [1, 2, 3]) {
      options.progress(`scale: serve: ${label} on ${workers} worker(s): deploying`);
      const budgetMib = Math.ceil(
        (positions * kvBytesPerPosition(dir, 0, config.nLayers)) / 2 ** 20,
      );
      // Every worker caches its own copy of its shard: gigabytes per cluster, removed after it.
      const clusterDir = join(options.cacheDir, label.replace(/\W+/g, '-'), `w${workers}`);
      const cluster = await LocalCluster.start({
        model: dir,
        workers,
        cliBin: options.cliBin,
        cacheDir: clusterDir,
        threads: Math.max(1, Math.floor(cores / workers)),
        workerOutput: 'ignore',
        workerArgs: () => ['--kv-budget-mib', String(budgetMib)],
        coordinator: { planning: { planner: 'even', workload: { contextTokens: context } } },
      });
      try {
        const vocab = config.vocabSize;
        const rates = new Map<number, number>();
        for (const streams of streamCounts) {
          options.progress(`scale: serve: ${label}, ${workers} worker(s): ${streams} stream(s)`);
          const runs = await Promise.all(
            Array.from({ length: streams }, (_, s) =>
              timedCompletion(
                { url: cluster.apiUrl },
                promptIds(DECODE_PROMPT_TOKENS, s, vocab),
                decodeTokens,
              ),
            ),
          );
          rates.set(streams, steadyRate(runs));
        }
        options.progress(
          `scale: serve: ${label}, ${workers} worker(s): ${promptTokens}-token prompts`,
        );
        const ttft: number[] = [];
        for (let i = 0; i < 3; i++)
          ttft.push(
            (
              await timedCompletion(
                { url: cluster.apiUrl },
                promptIds(promptTokens, 100 + i, vocab),
                1,
              )
            ).ttftMs,
          );
        const ttftMs = summarize(ttft).median;
        const bytesPerToken = weightBytesReadPerToken(dir.manifest);
        for (const [streams, tokensPerS] of rates) {
          const roofline = (tokensPerS * bytesPerToken) / options.bandwidthBytesPerS;
          speed.push({ model: label, workers, streams, tokensPerS, roofline, ttftMs });
        }
        for (const stage of cluster.coordinator.deployment) {
          const index = Number(stage.worker.replace(/^worker-/, ''));
          const pid = cluster.workers[index]?.pid;
          if (pid === undefined) continue;
          const shardDir = join(
            clusterDir,
            'coordinator',
            'shards',
            `v${SHARD_FORMAT_VERSION}`,
            modelHash,
            shardDirName(
              { start: stage.layerStart, end: stage.layerEnd },
              'float32',
              context === config.maxSeqLen ? undefined : context,
            ),
          );
          const shardBytes = await dirBytes(shardDir, ['model.onnx', 'weights.bin']);
          const peak = await peakRssBytes(pid);
          const kvBudgetBytes = budgetMib * 2 ** 20;
          const kvBytes = positions * kvBytesPerPosition(dir, stage.layerStart, stage.layerEnd);
          load.push({
            model: label,
            workers,
            worker: stage.worker,
            layers: `[${stage.layerStart}, ${stage.layerEnd})`,
            shardBytes,
            kvBudgetBytes,
            kvBytes,
            loadMs: stage.loadMs,
            peakRssBytes: peak,
            overheadBytes: peak - shardBytes - kvBytes,
          });
        }
      } finally {
        await cluster.stop();
        await rm(clusterDir, { recursive: true, force: true });
      }
    }
  }
  return { load, speed };
}

/**
 * Weight bytes a decode step reads: all of them, except an embedding that is not also the
 * LM head (a gather reads one row of it; a tied head reads it whole every token).
 */
export function weightBytesReadPerToken(manifest: ModelManifest): number {
  const untied = 'sharedClassifier' in manifest.config && !manifest.config.sharedClassifier;
  return manifest.weights.bytes - (untied ? manifest.embeddingBytes : 0);
}
