import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsInvalidError } from '@swarmbee/core';
import { SafetensorsFile } from '@swarmbee/model';
import t from 'tap';
import { safetensorsFile } from '../../../test/helpers/hf-stories260k.js';

async function collect(file: SafetensorsFile, name: string, chunkBytes?: number) {
  const parts: Float32Array[] = [];
  for await (const chunk of file.readFloat32(name, chunkBytes)) parts.push(chunk);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { values: out, chunks: parts.length };
}

/** A raw safetensors file from a header object and data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

t.test('F32, F16 and BF16 tensors stream back as fp32, in bounded chunks', async (t) => {
  const dir = t.testdir();
  // Values exactly representable in all three dtypes, plus fp16 subnormals and extremes.
  const exact = Float32Array.from([0, -0, 1, -2, 0.5, 3.75, -1024, 65504, 2 ** -14, 2 ** -24]);
  const big = Float32Array.from({ length: 10_000 }, (_, i) => (i % 97) - 48);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const path = join(dir, `${dtype}.safetensors`);
    const tensors: [string, { shape: number[]; data: Float32Array }][] = [
      ['exact', { shape: [2, 5], data: exact }],
      ['big', { shape: [100, 100], data: big }],
    ];
    await writeFile(path, safetensorsFile(tensors, dtype));
    const file = await SafetensorsFile.open(path);
    try {
      t.same(file.entry('big')?.shape, [100, 100]);
      const values = (await collect(file, 'exact')).values;
      if (dtype === 'BF16') {
        // bf16 keeps 8 bits of mantissa: 65504 and 2^-24 round; the others are exact.
        t.same(
          Array.from(values.slice(0, 7)),
          Array.from(exact.slice(0, 7)),
          `${dtype} exact values`,
        );
      } else {
        t.same(Array.from(values), Array.from(exact), `${dtype} values`);
      }
      t.ok(Object.is(values[1], -0), `${dtype} keeps the sign of zero`);
      const streamed = await collect(file, 'big', 4096);
      t.same(Array.from(streamed.values), Array.from(big), `${dtype} large tensor`);
      t.equal(streamed.chunks, Math.ceil((big.length * (dtype === 'F32' ? 4 : 2)) / 4096));
    } finally {
      await file.close();
    }
  }
});

t.test('BAD SAFETENSORS - each malformation is SWARMBEE_ERR_SAFETENSORS_INVALID', async (t) => {
  const dir = t.testdir();
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  const cases: [string, Buffer, RegExp][] = [
    ['shorter than 8 bytes', Buffer.from([1, 2, 3]), /shorter than the 8-byte/],
    [
      'header length past the end',
      Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]),
      /claims 65535 bytes/,
    ],
    ['header length over the limit', Buffer.from([0, 0, 0, 0, 0, 0, 1, 0]), /limit/],
    ['header not JSON', rawFile('x').fill(0x41, 8), /not UTF-8 JSON/],
    ['header an array', rawFile([1, 2]), /not a JSON object/],
    [
      'unknown dtype',
      rawFile({ a: { dtype: 'F7', shape: [1], data_offsets: [0, 4] } }, f32(1)),
      /unknown dtype/,
    ],
    [
      'bad shape',
      rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)),
      /not a list of sizes/,
    ],
    [
      'offsets past the data',
      rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)),
      /past the 8 bytes of data/,
    ],
    [
      'byte count not matching the shape',
      rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)),
      /needs 12 bytes but spans 8/,
    ],
    [
      'overlapping tensors',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        f32(3),
      ),
      /overlap/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    const path = join(dir, `${what.replaceAll(' ', '-')}.safetensors`);
    await writeFile(path, bytes);
    await t.rejects(
      SafetensorsFile.open(path),
      { code: SafetensorsInvalidError.code, message },
      what,
    );
  }
  const ints = join(dir, 'ints.safetensors');
  await writeFile(
    ints,
    rawFile({ a: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)),
  );
  const file = await SafetensorsFile.open(ints);
  try {
    await t.rejects(collect(file, 'a'), {
      code: SafetensorsInvalidError.code,
      message: /is I8; SwarmBee converts F32, F16, BF16/,
    });
    await t.rejects(collect(file, 'missing'), { code: SafetensorsInvalidError.code });
  } finally {
    await file.close();
  }
});
