/**
 * Variants of onnxruntime-genai's builder export tiny-random-LlamaForCausalLM-fp16, made by
 * editing its protobuf: the same graph with int4 weights, every MatMul replaced by the
 * `com.microsoft.MatMulNBits` node the builder emits for `-p int4` (block size 16, the
 * width of the model; fp16 scales, as the builder stores them beside fp16 activations).
 * The codes come from SwarmBee's block quantizer; what matters to the tests is only that
 * the graph is an int4 export, which they run unsplit in onnxruntime as the reference.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { quantizeBlockwise } from '@swarmbee/model';
import onnxProto from 'onnx-proto';
import { halfToFloat } from './gpt2-reference.js';
import { floatToHalf } from './onnx-variants.js';

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

const BLOCK_SIZE = 16;

/** Writes `<outDir>/model.onnx` (the external data file linked beside it); returns its path. */
export async function withInt4MatMuls(source: string, outDir: string): Promise<string> {
  const model = onnx.ModelProto.decode(await readFile(source));
  const graph = model.graph!;
  const data = await readFile(join(dirname(source), 'model.onnx.data'));
  const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const halves = (t: onnxProto.onnx.ITensorProto): Uint16Array => {
    const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value;
    const bytes = t.rawData?.length
      ? t.rawData
      : data.subarray(
          Number(entry('offset') ?? 0),
          Number(entry('offset') ?? 0) + Number(entry('length')),
        );
    return new Uint16Array(Uint8Array.from(bytes).buffer);
  };
  const added: onnxProto.onnx.ITensorProto[] = [];
  const replaced = new Set<string>();
  for (const node of graph.node!) {
    const weight = initializers.get(node.input?.[1] ?? '');
    if (node.opType !== 'MatMul' || !weight || weight.dataType !== DataType.FLOAT16) continue;
    const [K, N] = weight.dims!.map(Number) as [number, number];
    // MatMul's B is [K, N]; MatMulNBits takes [N, K] rows, as PyTorch's [out, in].
    const values = Float32Array.from(halves(weight), halfToFloat);
    const rows = new Float32Array(N * K);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) rows[n * K + k] = values[k * N + n]!;
    const q = quantizeBlockwise(rows, N, K, 4, BLOCK_SIZE);
    const base = weight.name!;
    const blocks = Math.ceil(K / BLOCK_SIZE);
    added.push(
      {
        name: `${base}.q4`,
        dataType: DataType.UINT8,
        dims: [N, blocks, BLOCK_SIZE / 2],
        rawData: q.codes,
      },
      {
        name: `${base}.scales`,
        dataType: DataType.FLOAT16,
        dims: [N * blocks],
        rawData: new Uint8Array(floatToHalf(q.scales).buffer),
      },
      {
        name: `${base}.zp`,
        dataType: DataType.UINT8,
        dims: [q.zeroPoints.length],
        rawData: q.zeroPoints,
      },
    );
    replaced.add(base);
    node.opType = 'MatMulNBits';
    node.domain = 'com.microsoft';
    node.input = [node.input![0]!, `${base}.q4`, `${base}.scales`, `${base}.zp`];
    const int = (name: string, i: number) => ({ name, type: AttributeType.INT, i });
    node.attribute = [int('K', K), int('N', N), int('bits', 4), int('block_size', BLOCK_SIZE)];
  }
  graph.initializer = [...graph.initializer!.filter((t) => !replaced.has(t.name!)), ...added];
  const out = join(outDir, 'model.onnx');
  await writeFile(out, onnx.ModelProto.encode(model).finish());
  // Copied, not linked: onnxruntime refuses external data that resolves outside the graph's dir.
  await writeFile(join(outDir, 'model.onnx.data'), data);
  await copyFile(join(dirname(source), 'genai_config.json'), join(outDir, 'genai_config.json'));
  return out;
}
