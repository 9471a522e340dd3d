/**
 * The two ONNX graphs of one pipeline stage's training step: a forward graph (stage
 * input to hidden state, or to the loss on the last stage) and a backward graph (the
 * gradient at the stage's output to the adapters' gradients and the gradient at the
 * stage's input). Between them, per micro-batch, the stage keeps either
 *
 * - `recompute`: only its input — the backward graph runs the forward pass again first
 *   (activation checkpointing at stage granularity: least memory), or
 * - `stash`: every activation the backward pass reads, returned by the forward graph
 *   and fed back to the backward graph (what autograd keeps: no second forward pass).
 *
 * The same layer code emits both graphs and both policies, so they cannot drift apart.
 */
import type { LlamaConfig } from '@swarmbee/core';
import { TOKEN_EMBEDDING } from '../llama-tensors.js';
import { type LoraModule, loraShapes, loraTensor } from '../lora/lora-spec.js';
import type { LocatedWeight } from '../onnx/llama-shard-graph.js';
import { attentionAdapted, attentionBackward, attentionForward } from './attention-block.js';
import { FrozenWeights } from './frozen-weights.js';
import { type HeadTargets, headBackward, headForward, headTargets } from './lm-head.js';
import { mlpBackward, mlpForward } from './mlp-block.js';
import { type Saved, type StageContext, stageContext } from './stage-context.js';
import { type FloatType, TrainGraph } from './train-graph.js';
import { TRAIN_IO } from './train-io.js';

export type ActivationPolicy = 'recompute' | 'stash';
export const ACTIVATION_POLICIES: readonly ActivationPolicy[] = ['recompute', 'stash'];

export interface TrainingStageSpec {
  config: LlamaConfig;
  layerStart: number;
  layerEnd: number;
  /** The adapter's modules (all layers; the stage takes its own). */
  modules: readonly LoraModule[];
  /** Where each frozen weight's bytes are, by canonical tensor name. */
  locate: (tensor: string) => LocatedWeight;
  float: FloatType;
  activations: ActivationPolicy;
  producer: string;
}

/** A graph value kept between a stage's forward and backward pass (stashing only). */
export interface SavedTensor {
  name: string;
  dims: (number | string)[];
}

export interface TrainingStageGraphs {
  forward: Uint8Array;
  /** Absent when nothing upstream of the stage's output needs a gradient. */
  backward?: Uint8Array;
  /** The stage's adapter tensors (graph inputs of both graphs), with their shapes. */
  params: { name: string; dims: [number, number] }[];
  /** Whether the backward graph yields `grad_hidden_in` (an earlier stage has adapters). */
  inputGradient: boolean;
  /** Forward outputs the backward graph takes (stashing); empty when recomputing. */
  saved: SavedTensor[];
}

/** The saved-values part of the head (layers use their index). */
const HEAD = 'head';

export function buildTrainingStageGraphs(spec: TrainingStageSpec): TrainingStageGraphs {
  const { config, layerStart, layerEnd } = spec;
  const isFirst = layerStart === 0;
  const isLast = layerEnd === config.nLayers;
  const modules = spec.modules.filter((m) => m.layer >= layerStart && m.layer < layerEnd);
  const params = modules.flatMap((m) => {
    const shapes = loraShapes(m);
    return [
      { name: loraTensor.a(m.layer, m.target), dims: shapes.a },
      { name: loraTensor.b(m.layer, m.target), dims: shapes.b },
    ];
  });
  const inputGradient = !isFirst && spec.modules.some((m) => m.layer < layerStart);
  const adapted = [...new Set(modules.map((m) => m.layer))];
  // The backward pass walks down to the stage's first layer, or only as far as its lowest adapter.
  const lowest = inputGradient ? layerStart : Math.min(...adapted);
  const needsBackward = inputGradient || adapted.length > 0;
  const describe = `layers [${layerStart}, ${layerEnd}) of a ${config.nLayers}-layer Llama`;

  const open = (name: string) => {
    const tg = new TrainGraph(name, spec.float);
    const inputs = new Map(params.map((p) => [p.name, tg.input(p.name, p.dims)]));
    const weights = new FrozenWeights(tg, spec.locate);
    const ctx = stageContext(tg, config, weights, modules, (tensor) => {
      const value = inputs.get(tensor);
      if (value === undefined) throw new Error(`internal: ${tensor} is not an input of ${name}`);
      return value;
    });
    return { tg, ctx };
  };

  /** Emits the forward pass; returns the stage's output ([N, dim] or the loss) and what it keeps. */
  const forwardPass = (ctx: StageContext, targets: HeadTargets | undefined) => {
    const { tg } = ctx;
    let x: string;
    if (isFirst) {
      const ids = tg.g.input(TRAIN_IO.inputIds, 'int64', ['batch', 'tokens']);
      x = tg.reshape(tg.op('Gather', [ctx.weights.tensor(TOKEN_EMBEDDING), ids]), [-1, config.dim]);
    } else {
      x = tg.reshape(tg.input(TRAIN_IO.hiddenIn, ['batch', 'tokens', config.dim]), [
        -1,
        config.dim,
      ]);
    }
    const saved = new Map<string, Saved>();
    for (let layer = layerStart; layer < layerEnd; layer++) {
      const kept: Saved = new Map();
      ctx.weights.gate(x);
      x = attentionForward(ctx, layer, x, kept);
      ctx.weights.gate(x);
      x = mlpForward(ctx, layer, x, kept);
      if (needsBackward && layer >= lowest) saved.set(String(layer), kept);
    }
    if (!targets) return { out: x, saved };
    const kept: Saved = new Map();
    ctx.weights.gate(x);
    const loss = headForward(ctx, x, targets, kept);
    saved.set(HEAD, kept);
    return { out: loss, saved };
  };

  const forward = open(`train_forward_${layerStart}_${layerEnd}`);
  const fwdTargets = isLast ? headTargets(forward.ctx) : undefined;
  const fwd = forwardPass(forward.ctx, fwdTargets);
  if (isLast) forward.tg.output(fwd.out, TRAIN_IO.loss, []);
  else
    forward.tg.output(forward.ctx.toHidden3(fwd.out), TRAIN_IO.hiddenOut, [
      'batch',
      'tokens',
      config.dim,
    ]);
  const savedTensors: SavedTensor[] = [];
  if (spec.activations === 'stash') {
    for (const [part, kept] of fwd.saved) {
      for (const [key, { value, dims }] of kept) {
        const name = TRAIN_IO.saved(part, key);
        forward.tg.output(value, name, dims);
        savedTensors.push({ name, dims });
      }
    }
  }
  const result: TrainingStageGraphs = {
    forward: forward.tg.encode(spec.producer, `training forward of ${describe}`),
    params,
    inputGradient,
    saved: savedTensors,
  };
  if (!needsBackward) return result;

  const backward = open(`train_backward_${layerStart}_${layerEnd}`);
  const { tg, ctx } = backward;
  const bwdTargets = isLast ? headTargets(ctx) : undefined;
  let lookup: (part: string) => (key: string) => string;
  if (spec.activations === 'recompute') {
    const again = forwardPass(ctx, bwdTargets);
    if (isLast) tg.output(again.out, TRAIN_IO.loss, []);
    ctx.weights.newPhase();
    ctx.weights.gate(again.out);
    lookup = (part) => (key) => {
      const value = again.saved.get(part)?.get(key)?.value;
      if (value === undefined) throw new Error(`internal: nothing saved as ${part}/${key}`);
      return value;
    };
  } else {
    const inputs = new Map(savedTensors.map((s) => [s.name, tg.input(s.name, s.dims)]));
    lookup = (part) => (key) => {
      const value = inputs.get(TRAIN_IO.saved(part, key));
      if (value === undefined) throw new Error(`internal: nothing stashed as ${part}/${key}`);
      return value;
    };
  }
  const grads = new Map<string, string>();
  let d = isLast
    ? headBackward(ctx, bwdTargets!, lookup(HEAD))
    : tg.reshape(tg.input(TRAIN_IO.gradHiddenOut, ['batch', 'tokens', config.dim]), [
        -1,
        config.dim,
      ]);
  for (let layer = layerEnd - 1; layer >= lowest; layer--) {
    const saved = lookup(String(layer));
    ctx.weights.gate(d);
    d = mlpBackward(ctx, layer, d, saved, grads);
    ctx.weights.gate(d);
    if (layer > lowest || inputGradient || attentionAdapted(ctx, layer))
      d = attentionBackward(ctx, layer, d, saved, grads);
  }
  if (inputGradient)
    tg.output(ctx.toHidden3(d), TRAIN_IO.gradHiddenIn, ['batch', 'tokens', config.dim]);
  for (const p of params) {
    const grad = grads.get(p.name);
    if (grad === undefined) throw new Error(`internal: no gradient for ${p.name}`);
    tg.output(grad, TRAIN_IO.grad(p.name), p.dims);
  }
  result.backward = tg.encode(spec.producer, `training backward of ${describe}`);
  return result;
}
