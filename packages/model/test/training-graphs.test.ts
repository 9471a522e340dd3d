import { join } from 'node:path';
import { type LlamaConfig, ModelUnsupportedError } from '@swarmbee/core';
import {
  buildTrainingShard,
  checkTrainable,
  loraModules,
  SYNTH_PRESETS,
  synthesizeModel,
  TRAIN_IO,
} from '@swarmbee/model';
import onnxProto from 'onnx-proto';
import t from 'tap';

const base = SYNTH_PRESETS.tiny.config;

function io(bytes: Uint8Array) {
  const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
  return {
    inputs: graph.input!.map((i) => i.name!),
    outputs: graph.output!.map((o) => o.name!),
  };
}

t.test('each stage graph takes and gives what the contract says', async (t) => {
  const dir = await synthesizeModel({ config: base, seed: 1, out: join(t.testdir(), 'm') });
  const modules = loraModules(
    { rank: 2, alpha: 4, targets: ['q_proj', 'down_proj'], layers: [1, 3] },
    base,
  );
  const first = await buildTrainingShard(dir, { start: 0, end: 2 }, modules);
  const middle = await buildTrainingShard(dir, { start: 2, end: 3 }, modules);
  const last = await buildTrainingShard(dir, { start: 3, end: 5 }, modules, {
    activations: 'stash',
  });
  const params = (layer: number) =>
    ['q_proj', 'down_proj'].flatMap((m) => [
      `layers.${layer}.${m}.lora_A`,
      `layers.${layer}.${m}.lora_B`,
    ]);
  t.same(io(first.forward).outputs, [TRAIN_IO.hiddenOut]);
  t.ok(io(first.forward).inputs.includes(TRAIN_IO.inputIds));
  t.same(
    io(first.backward!).outputs,
    params(1).map(TRAIN_IO.grad),
    'the first stage gives no input gradient',
  );
  t.equal(middle.params.length, 0);
  t.equal(middle.inputGradient, true, 'a stage above an adapter passes the gradient down');
  t.same(io(middle.backward!).outputs, [TRAIN_IO.gradHiddenIn]);
  t.ok(io(last.forward).outputs.includes(TRAIN_IO.loss));
  t.ok(
    io(last.forward).outputs.some((o) => o.startsWith('saved.')),
    'stashing: the forward graph returns what the backward reads',
  );
  t.same(io(last.backward!).outputs, [TRAIN_IO.gradHiddenIn, ...params(3).map(TRAIN_IO.grad)]);
  for (const name of [TRAIN_IO.targets, TRAIN_IO.lossScale, TRAIN_IO.gradHiddenIn])
    t.equal(io(last.backward!).inputs.includes(name), name !== TRAIN_IO.gradHiddenIn, name);
});

t.test('BAD INPUT - decoder blocks without a backward pass are refused by name', async (t) => {
  const cases: [Partial<LlamaConfig>, RegExp][] = [
    [{ qkNorm: true }, /per-head query\/key norms/],
    [{ postNorms: true }, /norms after attention/],
    [{ activation: 'gelu-tanh' }, /gelu-tanh MLP activation/],
    [{ embeddingScale: 8 }, /scaled token embeddings/],
    [{ attentionScale: 0.1 }, /attention scale/],
    [{ finalLogitSoftcap: 30 }, /soft-capping/],
    [{ slidingWindow: 64 }, /sliding-window attention \(layer 0: 64 positions\)/],
    [{ ropeScaling: { type: 'dynamic', factor: 2, originalContext: 256 } }, /dynamic \(NTK\)/],
  ];
  for (const [change, message] of cases)
    t.throws(
      () => checkTrainable({ ...base, ...change }, 'm'),
      { code: ModelUnsupportedError.code, message },
      JSON.stringify(change),
    );
  t.doesNotThrow(
    () => checkTrainable({ ...base, slidingWindow: 4096 }, 'm'),
    'a window past the context is full attention',
  );
  t.doesNotThrow(() =>
    checkTrainable(
      { ...base, ropeScaling: { type: 'linear', factor: 2 }, headDim: 16, qkvBias: true },
      'm',
    ),
  );
});
