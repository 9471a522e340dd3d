/**
 * LoRA adapters in Hugging Face PEFT's format: a directory with `adapter_config.json`
 * (LoraConfig) and `adapter_model.safetensors`, tensors named as PEFT saves them for a
 * Llama-family `LlamaForCausalLM`, e.g.
 * `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` ([r, in]) and
 * `...q_proj.lora_B.weight` ([out, r]). PEFT loads what this writes and this reads what
 * PEFT saves. SwarmBee adds the base model's hash and name to the safetensors metadata
 * (PEFT ignores it), so an adapter cannot be applied to another model by mistake.
 *
 * Reading refuses, with a coded error naming the key, what would change the maths and
 * is not implemented (DoRA, trained biases, per-module rank or alpha patterns, extra
 * trained modules, ...); keys PEFT uses only to initialise or train are accepted.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdapterInvalidError,
  AdapterUnsupportedError,
  SafetensorsInvalidError,
} from '@swarmbee/core';
import { SafetensorsFile } from '../hf/safetensors.js';
import { type NamedTensor, writeSafetensors } from '../hf/safetensors-writer.js';
import { StagingDir } from '../staging-dir.js';
import type { LoraAdapter } from './adapter.js';
import {
  ATTENTION_TARGETS,
  LORA_TARGETS,
  type LoraSpec,
  type LoraTarget,
  loraTensor,
} from './lora-spec.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** safetensors metadata keys SwarmBee records (PEFT keeps `format: pt`). */
export const ADAPTER_BASE_HASH_KEY = 'swarmbee.base_model_hash';
export const ADAPTER_BASE_NAME_KEY = 'swarmbee.base_model_name';

/** PEFT's name of a module's tensor. */
export function peftTensorName(layer: number, target: LoraTarget, which: 'A' | 'B'): string {
  const block = ATTENTION_TARGETS.includes(target) ? 'self_attn' : 'mlp';
  return `base_model.model.model.layers.${layer}.${block}.${target}.lora_${which}.weight`;
}

const PEFT_NAME =
  /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_(A|B)\.weight$/;

/** Writes `adapter` as a PEFT adapter dir at `out` (which must not exist or be empty). */
export async function writePeftAdapter(out: string, adapter: LoraAdapter): Promise<void> {
  await StagingDir.build(out, (dir) => writePeftAdapterFiles(dir, adapter));
}

/** Writes the adapter's two PEFT files into the existing dir `dir`. */
export async function writePeftAdapterFiles(dir: string, adapter: LoraAdapter): Promise<void> {
  const { spec } = adapter;
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: adapter.baseModelName ?? null,
    r: spec.rank,
    lora_alpha: spec.alpha,
    use_rslora: spec.rsLora === true,
    target_modules: LORA_TARGETS.filter((t) => spec.targets.includes(t)),
    layers_to_transform: spec.layers,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    use_dora: false,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
    init_lora_weights: true,
    inference_mode: true,
  };
  const tensors: NamedTensor[] = [];
  for (const layer of spec.layers) {
    for (const target of LORA_TARGETS) {
      if (!spec.targets.includes(target)) continue;
      for (const which of ['A', 'B'] as const) {
        const name = which === 'A' ? loraTensor.a(layer, target) : loraTensor.b(layer, target);
        const data = adapter.tensors.get(name);
        if (!data) throw new AdapterInvalidError(`the adapter has no tensor ${name}`);
        const features = data.length / spec.rank;
        tensors.push({
          name: peftTensorName(layer, target, which),
          shape: which === 'A' ? [spec.rank, features] : [features, spec.rank],
          data,
        });
      }
    }
  }
  const metadata: Record<string, string> = { format: 'pt' };
  if (adapter.baseModelHash) metadata[ADAPTER_BASE_HASH_KEY] = adapter.baseModelHash;
  if (adapter.baseModelName) metadata[ADAPTER_BASE_NAME_KEY] = adapter.baseModelName;
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, metadata);
  await writeFile(join(dir, ADAPTER_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}

/** Reads a PEFT adapter dir (written here or by PEFT). */
export async function readPeftAdapter(dir: string): Promise<LoraAdapter> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new AdapterInvalidError(
      `${dir} is not an adapter dir: cannot read ${ADAPTER_CONFIG_FILE} (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new AdapterInvalidError(`${configPath} is not a JSON object`);
  const settings = checkPeftConfig(config, configPath);
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS_FILE));
  } catch (error) {
    const reason = error instanceof SafetensorsInvalidError ? error.message : String(error);
    throw new AdapterInvalidError(`${dir}: ${reason}`, { cause: error });
  }
  try {
    const tensors = new Map<string, Float32Array>();
    const layers = new Set<number>();
    const targets = new Set<LoraTarget>();
    for (const entry of file.tensors.values()) {
      const match = PEFT_NAME.exec(entry.name);
      const target = match?.[3] as LoraTarget | undefined;
      if (!match || !target || !LORA_TARGETS.includes(target)) {
        const dora = entry.name.includes('lora_magnitude_vector');
        throw new (dora ? AdapterUnsupportedError : AdapterInvalidError)(
          `${file.path}: tensor ${entry.name} is not ${dora ? 'supported (DoRA)' : 'a LoRA tensor of a Llama projection SwarmBee knows'}`,
        );
      }
      if ((match[2] === 'self_attn') !== ATTENTION_TARGETS.includes(target))
        throw new AdapterInvalidError(
          `${file.path}: tensor ${entry.name} names ${target} under ${match[2]}`,
        );
      const layer = Number(match[1]);
      const which = match[4] as 'A' | 'B';
      const rankAxis = which === 'A' ? 0 : 1;
      if (entry.shape.length !== 2 || entry.shape[rankAxis] !== settings.rank)
        throw new AdapterInvalidError(
          `${file.path}: tensor ${entry.name} has shape [${entry.shape}]; rank ${settings.rank} needs ${which === 'A' ? '[r, in]' : '[out, r]'}`,
        );
      const chunks: Float32Array[] = [];
      for await (const chunk of file.readFloat32(entry.name)) chunks.push(chunk.slice());
      const values = new Float32Array(entry.shape[0]! * entry.shape[1]!);
      let at = 0;
      for (const chunk of chunks) {
        values.set(chunk, at);
        at += chunk.length;
      }
      tensors.set(
        which === 'A' ? loraTensor.a(layer, target) : loraTensor.b(layer, target),
        values,
      );
      layers.add(layer);
      targets.add(target);
    }
    if (tensors.size === 0) throw new AdapterInvalidError(`${file.path} holds no LoRA tensors`);
    const spec: LoraSpec = {
      rank: settings.rank,
      alpha: settings.alpha,
      targets: LORA_TARGETS.filter((t) => targets.has(t)),
      layers: [...layers].sort((a, b) => a - b),
    };
    if (settings.rsLora) spec.rsLora = true;
    const adapter: LoraAdapter = { spec, tensors };
    const hash = file.metadata[ADAPTER_BASE_HASH_KEY];
    if (hash) adapter.baseModelHash = hash;
    const name = file.metadata[ADAPTER_BASE_NAME_KEY] ?? settings.baseModelName;
    if (name) adapter.baseModelName = name;
    return adapter;
  } finally {
    await file.close();
  }
}

/**
 * LoraConfig keys whose value does not change the adapter's forward pass (initialisation,
 * training, bookkeeping), or that the tensors themselves answer (targets, layers).
 */
const NEUTRAL_KEYS = new Set([
  'peft_type',
  'task_type',
  'peft_version',
  'base_model_name_or_path',
  'revision',
  'r',
  'lora_alpha',
  'use_rslora',
  'target_modules',
  'exclude_modules',
  'layers_to_transform',
  'layers_pattern',
  'lora_dropout',
  'init_lora_weights',
  'inference_mode',
  'auto_mapping',
  'loftq_config',
  'eva_config',
  'corda_config',
  'lora_ga_config',
  'kasa_config',
  'arrow_config',
  'monteclora_config',
  'megatron_config',
  'megatron_core',
  'qalora_group_size',
  'ensure_weight_tying',
]);

/** Keys that change the maths, with the value SwarmBee implements (anything else is refused). */
const PLAIN_VALUES: Record<string, (value: unknown) => boolean> = {
  bias: (v) => v === 'none',
  lora_bias: (v) => v === false,
  fan_in_fan_out: (v) => v === false,
  use_dora: (v) => v === false,
  use_qalora: (v) => v === false,
  use_bdlora: (v) => v === null || v === false,
  modules_to_save: (v) => v === null || (Array.isArray(v) && v.length === 0),
  rank_pattern: (v) => isEmptyObject(v),
  alpha_pattern: (v) => isEmptyObject(v),
  layer_replication: (v) => v === null,
  trainable_token_indices: (v) => v === null,
  target_parameters: (v) => v === null || (Array.isArray(v) && v.length === 0),
  alora_invocation_tokens: (v) => v === null,
  velora_config: (v) => v === null,
};

function isEmptyObject(value: unknown): boolean {
  return value === null || (typeof value === 'object' && Object.keys(value as object).length === 0);
}

function checkPeftConfig(
  config: Record<string, unknown>,
  path: string,
): { rank: number; alpha: number; rsLora: boolean; baseModelName?: string } {
  if (config.peft_type !== 'LORA')
    throw new AdapterUnsupportedError(
      `${path}: peft_type ${JSON.stringify(config.peft_type)}; SwarmBee reads LORA adapters`,
    );
  if (
    config.task_type !== undefined &&
    config.task_type !== null &&
    config.task_type !== 'CAUSAL_LM'
  )
    throw new AdapterUnsupportedError(
      `${path}: task_type ${JSON.stringify(config.task_type)}; SwarmBee runs CAUSAL_LM adapters`,
    );
  for (const [key, value] of Object.entries(config)) {
    if (NEUTRAL_KEYS.has(key)) continue;
    const plain = PLAIN_VALUES[key];
    if (plain ? !plain(value) : value !== null && value !== false && !isEmptyObject(value))
      throw new AdapterUnsupportedError(
        `${path}: ${key} = ${JSON.stringify(value)} is not supported${plain ? '' : ' (a LoraConfig key SwarmBee does not know)'}`,
      );
  }
  const rank = config.r;
  const alpha = config.lora_alpha;
  if (!Number.isInteger(rank) || (rank as number) < 1)
    throw new AdapterInvalidError(`${path}: r = ${JSON.stringify(rank)} is not a positive integer`);
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw new AdapterInvalidError(
      `${path}: lora_alpha = ${JSON.stringify(alpha)} is not a positive number`,
    );
  const result: { rank: number; alpha: number; rsLora: boolean; baseModelName?: string } = {
    rank: rank as number,
    alpha,
    rsLora: config.use_rslora === true,
  };
  if (typeof config.base_model_name_or_path === 'string')
    result.baseModelName = config.base_model_name_or_path;
  return result;
}
