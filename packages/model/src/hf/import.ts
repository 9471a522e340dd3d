/**
 * `swarmbee model import hf`: a Hugging Face Llama-family checkpoint dir
 * (config.json, safetensors, tokenizer.json) into a model dir. fp16 and bf16
 * weights are widened to fp32 chunk by chunk; q/k rows are already in the model
 * dir's rotate-half layout, so nothing is permuted.
 */
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HfCheckpointInvalidError, headDim } from '@swarmbee/core';
import { sha256, sha256File } from '../hash.js';
import {
  CLASSIFIER,
  FINAL_NORM,
  layerTensor,
  llamaTensorSpecs,
  TOKEN_EMBEDDING,
} from '../llama-tensors.js';
import { type LlamaModelDir, type TensorValues, writeModelDir } from '../model-dir.js';
import { noProgress, type ProgressFn } from '../progress.js';
import { HF_CONFIG_FILE, HfWeights } from './checkpoint.js';
import { type HfConfigOptions, parseHfConfig } from './config.js';
import { readHfTokenizerFiles } from './tokenizer-files.js';

export interface ImportHfOptions extends HfConfigOptions {
  /** The checkpoint dir: config.json, model.safetensors (or shards and index), tokenizer.json. */
  dir: string;
  out: string;
  /** Model name in the manifest; default: the checkpoint dir's name. */
  name?: string;
  /** The Hugging Face repository it came from, recorded in the manifest's source. */
  repo?: string;
  progress?: ProgressFn;
}

/** Hugging Face tensor names for the model dir's canonical tensors. */
const hf = {
  embedding: 'model.embed_tokens.weight',
  norm: 'model.norm.weight',
  head: 'lm_head.weight',
  layer: (layer: number, part: string) => `model.layers.${layer}.${part}`,
};

export async function importHf(options: ImportHfOptions): Promise<LlamaModelDir> {
  const { dir } = options;
  const progress = options.progress ?? noProgress;
  const configBytes = await readFile(join(dir, HF_CONFIG_FILE)).catch((error: Error) => {
    throw new HfCheckpointInvalidError(
      `${dir} has no readable ${HF_CONFIG_FILE} (${error.message}); is it a Hugging Face model dir?`,
      { cause: error },
    );
  });
  let configJson: unknown;
  try {
    configJson = JSON.parse(configBytes.toString('utf8'));
  } catch (error) {
    throw new HfCheckpointInvalidError(`${join(dir, HF_CONFIG_FILE)} is not valid JSON`, {
      cause: error,
    });
  }
  const parsed = parseHfConfig(configJson, dir, options);
  const { config } = parsed;
  const { files: tokenizerFiles } = await readHfTokenizerFiles(dir, parsed, config.vocabSize);
  const weights = await HfWeights.open(dir);
  try {
    const sources = tensorSources(weights, config.nLayers, config.qkvBias === true);
    const shapes = expectedShapes(config);
    for (const spec of llamaTensorSpecs(config)) {
      const names = sources.get(spec.name)!;
      for (const [i, name] of names.entries()) weights.expect(name, shapes(spec.name, i));
    }
    const hashes = await hashFiles(weights, progress);
    return await writeModelDir(options.out, {
      name: options.name ?? basename(resolve(dir)),
      config,
      source: {
        kind: 'hf',
        architecture: parsed.architecture,
        configSha256: sha256(configBytes),
        weights: hashes,
        ...(options.repo ? { repo: options.repo } : {}),
      },
      hfTokenizer: tokenizerFiles,
      progress,
      tensors: (spec): TensorValues => weights.concat(sources.get(spec.name)!),
    });
  } finally {
    await weights.close();
  }
}

/** Which HF tensors, in order, make each canonical tensor. */
function tensorSources(
  weights: HfWeights,
  nLayers: number,
  qkvBias: boolean,
): Map<string, string[]> {
  const sources = new Map<string, string[]>([
    [TOKEN_EMBEDDING, [hf.embedding]],
    [FINAL_NORM, [hf.norm]],
    [CLASSIFIER, [hf.head]],
  ]);
  for (let l = 0; l < nLayers; l++) {
    const at = (part: string) => hf.layer(l, part);
    sources.set(layerTensor.attnNorm(l), [at('input_layernorm.weight')]);
    sources.set(layerTensor.wqkv(l), [
      at('self_attn.q_proj.weight'),
      at('self_attn.k_proj.weight'),
      at('self_attn.v_proj.weight'),
    ]);
    if (qkvBias)
      sources.set(layerTensor.bqkv(l), [
        at('self_attn.q_proj.bias'),
        at('self_attn.k_proj.bias'),
        at('self_attn.v_proj.bias'),
      ]);
    sources.set(layerTensor.wo(l), [at('self_attn.o_proj.weight')]);
    sources.set(layerTensor.ffnNorm(l), [at('post_attention_layernorm.weight')]);
    sources.set(layerTensor.w13(l), [at('mlp.gate_proj.weight'), at('mlp.up_proj.weight')]);
    sources.set(layerTensor.w2(l), [at('mlp.down_proj.weight')]);
  }
  const bias = weights.entry(hf.layer(0, 'self_attn.o_proj.bias'));
  if (bias)
    throw new HfCheckpointInvalidError(
      `${weights.dir}: the checkpoint has an o_proj bias, which its config does not declare`,
    );
  return sources;
}

/** The shape config.json implies for part `i` of a canonical tensor's HF sources. */
function expectedShapes(
  config: ReturnType<typeof parseHfConfig>['config'],
): (canonical: string, part: number) => number[] {
  const hd = headDim(config);
  const rows = [config.nHeads * hd, config.nKvHeads * hd, config.nKvHeads * hd];
  return (canonical, part) => {
    if (canonical === TOKEN_EMBEDDING || canonical === CLASSIFIER)
      return [config.vocabSize, config.dim];
    if (canonical.endsWith('.wqkv')) return [rows[part]!, config.dim];
    if (canonical.endsWith('.bqkv')) return [rows[part]!];
    if (canonical.endsWith('.wo')) return [config.dim, config.nHeads * hd];
    if (canonical.endsWith('.w13')) return [config.hiddenDim, config.dim];
    if (canonical.endsWith('.w2')) return [config.dim, config.hiddenDim];
    return [config.dim];
  };
}

async function hashFiles(
  weights: HfWeights,
  progress: ProgressFn,
): Promise<{ file: string; sha256: string }[]> {
  const total = weights.files.length;
  const hashes: { file: string; sha256: string }[] = [];
  for (const file of weights.files) {
    hashes.push({ file, sha256: await sha256File(join(weights.dir, file)) });
    progress({ phase: 'hash checkpoint', done: hashes.length, total, unit: 'files' });
  }
  return hashes;
}
