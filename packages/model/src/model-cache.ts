/**
 * Where SwarmBee keeps models it makes for itself (the quick start's embedded
 * default, benchmark presets) and shards it builds: `$SWARMBEE_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/swarmbee`, else `~/.cache/swarmbee`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type ModelDir, openModelDir } from './model-dir.js';
import type { ProgressFn } from './progress.js';
import {
  DEFAULT_PRESET,
  DEFAULT_SYNTH_SEED,
  SYNTH_PRESETS,
  type SynthPresetName,
} from './synth/presets.js';
import { synthesizeModel } from './synth/synthesize.js';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWARMBEE_CACHE_DIR) return env.SWARMBEE_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'swarmbee');
}

/**
 * A synthetic preset model from the cache, made on first use. Same preset and
 * seed give the same weights on every machine.
 */
export async function cachedSynthModel(
  preset: SynthPresetName = DEFAULT_PRESET,
  seed: number = DEFAULT_SYNTH_SEED,
  options: { root?: string; progress?: ProgressFn } = {},
): Promise<ModelDir> {
  const path = join(options.root ?? cacheRoot(), 'models', `synthetic-${preset}-seed${seed}`);
  try {
    return await openModelDir(path);
  } catch {
    try {
      return await synthesizeModel({
        config: SYNTH_PRESETS[preset].config,
        seed,
        preset,
        out: path,
        progress: options.progress,
      });
    } catch (error) {
      // Another process may have made it first.
      return openModelDir(path).catch(() => {
        throw error;
      });
    }
  }
}
