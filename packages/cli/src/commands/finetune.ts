/**
 * `swarmbee finetune`: LoRA fine-tuning of a model dir on a JSONL file, in this
 * process, over an in-process pipeline of `--stages` stages; writes the adapter as a
 * Hugging Face PEFT adapter dir that `swarmbee generate --adapter` (and PEFT) load.
 */

import type { ApiTarget } from '@swarmbee/coordinator/client';
import { InvalidArgumentError } from '@swarmbee/core';
import {
  LEARNING_RATE_SCHEDULES,
  type LearningRateSchedule,
  PIPELINE_SCHEDULES,
  type PipelineScheduleKind,
} from '@swarmbee/engine';
import {
  ACTIVATION_POLICIES,
  type ActivationPolicy,
  LORA_TARGETS,
  type LoraTarget,
  openModelDir,
  requireLlamaDir,
} from '@swarmbee/model';
import {
  defaultWarmupSteps,
  FINETUNE_DEFAULTS,
  type FinetuneResult,
  type FinetuneSettings,
  finetune,
} from '@swarmbee/train';
import type { Argv } from 'yargs';
import { checkFederatedArgs, federatedOptions, federatedRemote } from '../federated-finetune.js';
import { clusterContext, finetuneRemote } from '../remote-finetune.js';
import { renderTable } from '../ui/table.js';
import { trainingProgress } from '../ui/training-progress.js';
import { parseLayerList } from './optimize.js';

const D = FINETUNE_DEFAULTS;

/** "q_proj,v_proj" or "all" → targets, each checked. */
export function parseTargets(text: string): LoraTarget[] {
  if (text.trim() === 'all') return [...LORA_TARGETS];
  const targets = text.split(',').map((t) => t.trim());
  for (const target of targets)
    if (!LORA_TARGETS.includes(target as LoraTarget))
      throw new InvalidArgumentError(
        `--targets: "${target}" is not one of ${LORA_TARGETS.join(', ')} (or "all")`,
      );
  return targets as LoraTarget[];
}

/** --batch-size, --micro-batch-size and --accumulation: any two give the third. */
export function batchShape(args: {
  batchSize?: number;
  microBatchSize?: number;
  accumulation?: number;
}): { microBatchSize: number; accumulation: number } {
  const micro = args.microBatchSize ?? D.microBatchSize;
  if (args.batchSize === undefined)
    return { microBatchSize: micro, accumulation: args.accumulation ?? D.accumulation };
  if (
    args.accumulation !== undefined &&
    args.microBatchSize !== undefined &&
    args.batchSize !== micro * args.accumulation
  )
    throw new InvalidArgumentError(
      `--batch-size ${args.batchSize} is not --micro-batch-size ${micro} × --accumulation ${args.accumulation}`,
    );
  if (args.accumulation !== undefined && args.microBatchSize === undefined) {
    if (args.batchSize % args.accumulation !== 0)
      throw new InvalidArgumentError(
        `--batch-size ${args.batchSize} is not a multiple of --accumulation ${args.accumulation}`,
      );
    return { microBatchSize: args.batchSize / args.accumulation, accumulation: args.accumulation };
  }
  if (args.batchSize % micro !== 0)
    throw new InvalidArgumentError(
      `--batch-size ${args.batchSize} is not a multiple of --micro-batch-size ${micro}`,
    );
  return { microBatchSize: micro, accumulation: args.batchSize / micro };
}

export function finetuneCommand(yargs: Argv): Argv {
  return yargs.command(
    'finetune',
    'Fine-tune a model with LoRA on a JSONL file, in this process or on a cluster (--url); writes a PEFT adapter dir',
    (y) =>
      y
        .option('model', {
          type: 'string',
          describe:
            'Model dir to adapt in this process (its weights stay frozen; fp32, int8 or int4); or --url',
        })
        .option('url', {
          type: 'string',
          describe:
            "A running coordinator's base URL: train over its deployed stages instead (the data goes to the coordinator)",
        })
        .option('api-key', {
          type: 'string',
          describe: 'Bearer key for --url when the coordinator requires one',
        })
        .option('pin-private', {
          type: 'boolean',
          default: false,
          describe:
            "With --url: train the first and last stage on the coordinator's device, so workers see no token ids",
        })
        .option('data', {
          type: 'string',
          describe: 'Training data: JSONL, one {"text": ...} or {"messages": [...]} record a line',
        })
        .option('out', {
          type: 'string',
          demandOption: true,
          describe: 'Adapter dir to write at the end (PEFT format; must not exist or be empty)',
        })
        .option('rank', { type: 'number', default: D.rank, describe: 'LoRA rank r' })
        .option('alpha', {
          type: 'number',
          default: D.alpha,
          describe: 'LoRA alpha: updates are scaled by alpha / r',
        })
        .option('targets', {
          type: 'string',
          default: D.targets.join(','),
          describe: `Projections to adapt: ${LORA_TARGETS.join(',')} or all`,
        })
        .option('layers', {
          type: 'string',
          describe: 'Layers to adapt, inclusive ranges: 0-5,8 (default: every layer)',
        })
        .option('lr', {
          type: 'number',
          default: D.learningRate,
          describe: 'Peak learning rate (AdamW)',
        })
        .option('lr-schedule', {
          choices: LEARNING_RATE_SCHEDULES,
          default: D.schedule,
          describe: 'Learning-rate decay after the warm-up',
        })
        .option('warmup-steps', {
          type: 'number',
          describe:
            'Optimizer steps of linear warm-up from 0 (default: 5% of --steps, rounded up; federated: rounds, default 0)',
        })
        .option('weight-decay', {
          type: 'number',
          default: D.weightDecay,
          describe: "AdamW's decoupled weight decay, per step, times the learning rate",
        })
        .option('max-grad-norm', {
          type: 'number',
          default: D.maxGradNorm,
          describe: 'Clip the global gradient norm to this; 0 = no clipping',
        })
        .option('steps', {
          type: 'number',
          describe: `Optimizer steps to run (default ${D.steps}; federated: --rounds and --local-steps)`,
        })
        .options(federatedOptions)
        .option('micro-batch-size', {
          type: 'number',
          describe: `Sequences per micro-batch (default ${D.microBatchSize})`,
        })
        .option('accumulation', {
          type: 'number',
          describe: `Micro-batches whose gradients accumulate into one optimizer step (default ${D.accumulation})`,
        })
        .option('batch-size', {
          type: 'number',
          describe:
            'Sequences per optimizer step, instead of --accumulation (= micro-batch size × accumulation)',
        })
        .option('seq-len', {
          type: 'number',
          describe: `Longest sequence, tokens (default ${D.seqLen}, at most the model's context)`,
        })
        .option('truncate', {
          type: 'boolean',
          default: D.truncate,
          describe: 'Cut records longer than --seq-len instead of stopping with an error',
        })
        .option('stages', {
          type: 'number',
          describe: `Pipeline stages (even layer ranges), each in its own thread (default ${D.stages}; with --url the deployment's)`,
        })
        .option('schedule', {
          choices: PIPELINE_SCHEDULES,
          default: D.pipelineSchedule,
          describe: 'Pipeline schedule of the micro-batches: 1f1b or gpipe',
        })
        .option('activations', {
          choices: ACTIVATION_POLICIES,
          default: D.activations,
          describe:
            'Between forward and backward: keep only stage inputs and recompute, or stash every activation',
        })
        .option('checkpoint-dir', {
          type: 'string',
          describe: 'Where checkpoints go (default: OUT.checkpoints beside --out)',
        })
        .option('checkpoint-interval', {
          type: 'number',
          default: D.checkpointInterval,
          describe: 'Checkpoint every this many steps (0: only at the end)',
        })
        .option('keep-checkpoints', {
          type: 'number',
          default: D.keepCheckpoints,
          describe: 'Newest checkpoints kept',
        })
        .option('resume', {
          type: 'boolean',
          default: false,
          describe: 'Continue from the newest checkpoint in --checkpoint-dir',
        })
        .option('eval-data', {
          type: 'string',
          array: true,
          describe:
            'JSONL records to report loss and perplexity on, before and after training (repeatable)',
        })
        .option('seed', {
          type: 'number',
          default: D.seed,
          describe: "Seed of the adapter's initial values and the data order",
        })
        .option('threads', {
          type: 'number',
          describe: 'onnxruntime threads per stage (default: the cores shared among the stages)',
        })
        .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON' }),
    async (args) => {
      const target = args.url === undefined ? undefined : remoteTarget(args);
      const model =
        target || args.model === undefined
          ? undefined
          : requireLlamaDir(await openModelDir(args.model), 'finetune');
      if (!model && !target)
        throw new InvalidArgumentError(
          'finetune needs --model (train here) or --url (train on a cluster)',
        );
      const context = model ? model.manifest.config.maxSeqLen : await clusterContext(target!);
      checkFederatedArgs(args);
      if (!args.federated && args.data === undefined)
        throw new InvalidArgumentError(
          'finetune needs --data FILE.jsonl (or --federated with --url)',
        );
      const steps = args.steps ?? D.steps;
      const settings: FinetuneSettings = {
        rank: args.rank,
        alpha: args.alpha,
        targets: parseTargets(args.targets),
        learningRate: args.lr,
        schedule: args.lrSchedule as LearningRateSchedule,
        // Federated: the schedule runs over rounds, without a warm-up unless asked.
        warmupSteps: args.warmupSteps ?? (args.federated ? 0 : defaultWarmupSteps(steps)),
        weightDecay: args.weightDecay,
        maxGradNorm: args.maxGradNorm,
        steps,
        ...batchShape(args),
        seqLen: args.seqLen ?? Math.min(D.seqLen, context),
        truncate: args.truncate,
        stages: args.stages ?? D.stages,
        pipelineSchedule: args.schedule as PipelineScheduleKind,
        activations: args.activations as ActivationPolicy,
        seed: args.seed,
        checkpointInterval: args.checkpointInterval,
        keepCheckpoints: args.keepCheckpoints,
      };
      if (args.layers !== undefined) settings.layers = parseLayerList(args.layers);
      if (args.threads !== undefined) settings.threads = args.threads;
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      const progress = trainingProgress();
      let result: FinetuneResult;
      try {
        if (target && args.federated) {
          await federatedRemote({
            target,
            out: args.out,
            settings,
            args,
            signal: controller.signal,
          });
          return;
        }
        if (target) {
          const remote = await finetuneRemote({
            target,
            data: args.data!,
            evalData: args.evalData ?? [],
            out: args.out,
            settings,
            pinPrivate: args.pinPrivate,
            onEvent: progress.report,
            signal: controller.signal,
          });
          progress.stop();
          report(
            {
              ...remote.result,
              checkpoint: '(on the coordinator)',
              ...(remote.adapterDir ? { adapterDir: remote.adapterDir } : {}),
            },
            settings,
            args.json,
            remote.placement,
          );
          return;
        }
        result = await finetune({
          model: model!,
          data: args.data!,
          out: args.out,
          checkpointDir: args.checkpointDir ?? `${args.out.replace(/\/+$/, '')}.checkpoints`,
          resume: args.resume,
          evalData: args.evalData ?? [],
          settings,
          onEvent: progress.report,
          signal: controller.signal,
        });
      } finally {
        progress.stop();
        process.off('SIGINT', onSignal);
      }
      report(result, settings, args.json);
    },
  );
}

/** The --url target, after refusing the options that only a run in this process has. */
function remoteTarget(args: {
  url?: string;
  apiKey?: string;
  model?: string;
  stages?: number;
  resume: boolean;
  checkpointDir?: string;
}): ApiTarget {
  const local: [string, unknown][] = [
    ['--model', args.model],
    ['--stages', args.stages],
    ['--checkpoint-dir', args.checkpointDir],
    ['--resume', args.resume || undefined],
  ];
  for (const [flag, value] of local)
    if (value !== undefined)
      throw new InvalidArgumentError(
        `${flag} does not go with --url: the cluster's deployment decides the stages, and its coordinator keeps the checkpoints`,
      );
  return { url: args.url!, ...(args.apiKey ? { apiKey: args.apiKey } : {}) };
}

function report(
  result: FinetuneResult,
  settings: FinetuneSettings,
  json: boolean,
  placement?: string[],
): void {
  const first = result.history[0];
  const last = result.history.at(-1);
  if (json) {
    process.stdout.write(`${JSON.stringify(placement ? { ...result, placement } : result)}\n`);
    return;
  }
  const rows: (string | number)[][] = [
    ['steps', `${result.steps} of ${settings.steps}`],
    [
      'loss (first → last step)',
      first && last ? `${first.loss.toFixed(4)} → ${last.loss.toFixed(4)}` : '-',
    ],
  ];
  if (result.trainingMs > 0)
    rows.push(['training tokens/s', (result.tokens / (result.trainingMs / 1000)).toFixed(0)]);
  for (const e of result.eval)
    rows.push([
      `perplexity on ${e.data} (before → after)`,
      `${e.before.perplexity.toFixed(3)} → ${e.after ? e.after.perplexity.toFixed(3) : '-'}`,
    ]);
  if (placement)
    rows.push([
      'stages trained on',
      placement.map((p) => (p === 'local' ? 'the coordinator' : p)).join(', '),
    ]);
  rows.push(
    ['adapter', result.adapterDir ?? '(not written: stopped early)'],
    ['checkpoint', result.checkpoint],
  );
  process.stdout.write(`${renderTable(['fine-tuning', ''], rows)}\n`);
  if (result.stopped)
    process.stderr.write(
      `stopped after step ${result.steps}; continue with the same options and --resume\n`,
    );
}
