/**
 * Test models derived from tiny-random-gpt2-fp32's past.onnx by editing its
 * protobuf: the same graph with its initializers in an external data file (as
 * exports over 2 GB have them), the same graph with fp16 weights and an fp16 KV
 * cache, and graphs whose layers cannot be found.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from '@swarmbee/model';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { DataType, DataLocation } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

async function decode(path: string): Promise<onnxProto.onnx.ModelProto> {
  return onnx.ModelProto.decode(await readFile(path));
}

/**
 * past.onnx re-saved with every initializer in `past.onnx.data` beside it (each at a
 * 64-byte boundary, as onnx's own helper aligns them). Returns the graph's path.
 */
export async function withExternalData(source: string, outDir: string): Promise<string> {
  const model = await decode(source);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  model.graph!.initializer = model.graph!.initializer!.map((t) => {
    const raw = t.rawData!;
    const padding = (64 - (offset % 64)) % 64;
    chunks.push(new Uint8Array(padding), raw);
    offset += padding;
    const entry = {
      name: t.name,
      dataType: t.dataType,
      dims: t.dims,
      dataLocation: DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: 'past.onnx.data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ],
    };
    offset += raw.length;
    return entry;
  });
  await writeFile(join(outDir, 'past.onnx.data'), Buffer.concat(chunks));
  const path = join(outDir, 'past.onnx');
  await writeFile(path, onnx.ModelProto.encode(model).finish());
  return path;
}

/**
 * past.onnx with fp16 weights (each float initializer stored half precision and
 * cast back to float32 where the graph reads it) and an fp16 KV cache (past inputs
 * and present outputs declared float16, cast at the graph's edge). onnxruntime's
 * CPU kernels for the fused ops are float32-only, so the arithmetic stays float32.
 */
export async function withFloat16(source: string, out: string): Promise<string> {
  const model = await decode(source);
  const graph = model.graph!;
  const casts: onnxProto.onnx.INodeProto[] = [];
  const cast = (from: string, to: string, type: number): onnxProto.onnx.INodeProto => ({
    opType: 'Cast',
    name: `cast_${to}`,
    input: [from],
    output: [to],
    attribute: [{ name: 'to', type: AttributeType.INT, i: type }],
  });
  graph.initializer = graph.initializer!.map((t) => {
    if (t.dataType !== DataType.FLOAT) return t;
    const values = new Float32Array(
      t.rawData!.buffer.slice(t.rawData!.byteOffset, t.rawData!.byteOffset + t.rawData!.length),
    );
    const half = floatToHalf(values);
    casts.push(cast(`${t.name}_fp16`, t.name!, DataType.FLOAT));
    return {
      name: `${t.name}_fp16`,
      dataType: DataType.FLOAT16,
      dims: t.dims,
      rawData: new Uint8Array(half.buffer),
    };
  });
  const renamed = new Map<string, string>();
  for (const input of graph.input!) {
    if (!input.name!.startsWith('past_')) continue;
    input.type!.tensorType!.elemType = DataType.FLOAT16;
    renamed.set(input.name!, `${input.name}_fp32`);
    casts.push(cast(input.name!, `${input.name}_fp32`, DataType.FLOAT));
  }
  const tail: onnxProto.onnx.INodeProto[] = [];
  for (const output of graph.output!) {
    if (!output.name!.startsWith('present_')) continue;
    output.type!.tensorType!.elemType = DataType.FLOAT16;
    renamed.set(output.name!, `${output.name}_fp32`);
    tail.push(cast(`${output.name}_fp32`, output.name!, DataType.FLOAT16));
  }
  for (const node of graph.node!) {
    node.input = node.input!.map((n) => renamed.get(n) ?? n);
    node.output = node.output!.map((n) => renamed.get(n) ?? n);
  }
  graph.node = [...casts, ...graph.node!, ...tail];
  await writeFile(out, onnx.ModelProto.encode(model).finish());
  return out;
}

/** IEEE 754 float32 to half precision, rounding to nearest even. */
export function floatToHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = ((x >>> 23) & 0xff) - 127 + 15;
    let mantissa = x & 0x7fffff;
    if (exponent >= 0x1f) out[i] = sign | 0x7c00;
    else if (exponent <= 0) {
      if (exponent < -10) out[i] = sign;
      else {
        mantissa |= 0x800000;
        const shift = 14 - exponent;
        let half = mantissa >> shift;
        const rest = mantissa & ((1 << shift) - 1);
        const halfway = 1 << (shift - 1);
        if (rest > halfway || (rest === halfway && half & 1)) half++;
        out[i] = sign | half;
      }
    } else {
      let half = (exponent << 10) | (mantissa >> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

/** A "decoder" with token, position and mask inputs but no per-layer past: an embedding and a head. */
export function decoderWithoutPast(): Uint8Array {
  const g = new GraphBuilder('no_layers');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  g.input('position_ids', 'int64', ['batch', 'seq']);
  g.input('attention_mask', 'int64', ['batch', 'total']);
  const table = g.constant('wte', 'float32', [16, 4], new Float32Array(64).fill(0.5));
  const head = g.constant('head', 'float32', [4, 16], new Float32Array(64).fill(0.25));
  const logits = g.op('MatMul', [g.op('Gather', [table, ids]), head], {}, 'logits');
  g.output(logits, 'float32', ['batch', 'seq', 16]);
  return g.encode({ opset: 17, producer: 'test' });
}

/**
 * Two layers' pasts with no residual stream between them: both are read by one
 * node, so no point separates layer 0 from layer 1.
 */
export function decoderWithTangledLayers(): Uint8Array {
  const g = new GraphBuilder('tangled');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  g.input('position_ids', 'int64', ['batch', 'seq']);
  g.input('attention_mask', 'int64', ['batch', 'total']);
  const pasts = [0, 1].map((l) => g.input(`past_${l}`, 'float32', [2, 'batch', 1, 'past', 4]));
  const table = g.constant('wte', 'float32', [16, 4], new Float32Array(64).fill(0.5));
  const embedded = g.op('Gather', [table, ids]);
  const presents = pasts.map((p, l) => {
    const present = g.op('Identity', [p], {}, `present_${l}`);
    g.output(present, 'float32', [2, 'batch', 1, 'total', 4]);
    return present;
  });
  const summary = g.op(
    'ReduceSum',
    [g.op('Concat', presents, { axis: { kind: 'int', value: 0 } })],
    {
      keepdims: { kind: 'int', value: 0 },
    },
  );
  const mixed = g.op('Add', [
    embedded,
    g.op('ReduceMean', [summary], { keepdims: { kind: 'int', value: 0 } }),
  ]);
  const head = g.constant('head', 'float32', [4, 16], new Float32Array(64).fill(0.25));
  const logits = g.op('MatMul', [mixed, head], {}, 'logits');
  g.output(logits, 'float32', ['batch', 'seq', 16]);
  return g.encode({ opset: 17, producer: 'test' });
}
