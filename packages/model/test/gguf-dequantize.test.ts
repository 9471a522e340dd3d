/**
 * GGUF tensor decoding against ggml: every block type SwarmBee reads dequantizes to the
 * very float32 values gguf-py's `gguf.quants.dequantize` gives (test/fixtures/gguf, made
 * by make_dequant_fixtures.py from llama-quantize output), and the types that map onto
 * MatMulNBits do so without changing a bit.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openGguf } from '@swarmbee/model';
import t from 'tap';
import {
  GGUF_FIXTURES_DIR,
  GGUF_SHARED_DIR,
  SHARED_GGUF,
} from '../../../test/helpers/gguf-fixtures.js';
import { haveSharedModel } from '../../../test/helpers/shared-models.js';
import { dequantize } from '../src/gguf/dequantize.js';
import { DECODED_GGML_TYPES } from '../src/gguf/ggml-types.js';
import { readTensorBytes } from '../src/gguf/gguf-file.js';
import { mapsLosslessly, mapToMatMulNBits } from '../src/gguf/nbits-mapping.js';
import { dequantizeBlockwise } from '../src/quant/block-quant.js';
import { reorderQuantizedRows, reshapeQuantized, stackQuantized } from '../src/quant/matrix-ops.js';

const bits = (values: Float32Array) =>
  new Uint32Array(values.buffer, values.byteOffset, values.length);

function firstDifference(got: Float32Array, want: Float32Array): string {
  if (got.length !== want.length) return `${got.length} values, expected ${want.length}`;
  const a = bits(got);
  const b = bits(want);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i])
      return `value ${i}: ${got[i]} (0x${a[i]!.toString(16)}), expected ${want[i]} (0x${b[i]!.toString(16)})`;
  return '';
}

t.test('every decoded ggml type dequantizes bit for bit as gguf-py does', async (t) => {
  const file = await openGguf(join(GGUF_FIXTURES_DIR, 'dequant-types.gguf'));
  const handle = await open(file.path);
  t.teardown(() => handle.close());
  const names = new Set<string>();
  for (const tensor of file.tensors) {
    if (tensor.name.endsWith('.expected')) continue;
    const type = tensor.type!.name;
    names.add(type);
    const expected = file.tensors.find((x) => x.name === `${tensor.name}.expected`)!;
    const want = dequantize('F32', await readTensorBytes(handle, expected));
    const raw = await readTensorBytes(handle, tensor);
    t.equal(firstDifference(dequantize(type, raw), want), '', `${type} equals gguf-py`);
    if (mapsLosslessly(type)) {
      const mapped = mapToMatMulNBits(type, raw, tensor.ne[1]!, tensor.ne[0]!);
      t.equal(
        firstDifference(dequantizeBlockwise(mapped), want),
        '',
        `${type} → int${mapped.bits}, block ${mapped.blockSize}: MatMulNBits dequantizes to the same values`,
      );
      const wide = reshapeQuantized(mapped, 8, 16);
      t.equal(
        firstDifference(dequantizeBlockwise(wide), want),
        '',
        `${type} widened to int8 blocks of 16: unchanged`,
      );
    }
  }
  t.same(
    [...names].sort(),
    DECODED_GGML_TYPES.map((x) => x.name)
      .filter((n) => n !== 'F32')
      .sort(),
    'the fixture covers every decoded type but F32',
  );
  t.same(
    DECODED_GGML_TYPES.map((x) => x.name)
      .filter(mapsLosslessly)
      .sort(),
    ['Q3_K', 'Q4_0', 'Q5_0', 'Q6_K', 'Q8_0', 'Q8_K'],
    'the types mapped without loss',
  );
});

t.test('whole tensors of llama.cpp-made GGUFs decode to gguf-py’s values (sha256)', async (t) => {
  if (!haveSharedModel(t, SHARED_GGUF.synthqQ4KM)) return;
  const hashes = JSON.parse(
    readFileSync(join(GGUF_FIXTURES_DIR, 'shared-dequant.json'), 'utf8'),
  ) as Record<string, Record<string, { type: string; sha256: string }>>;
  for (const [name, tensors] of Object.entries(hashes)) {
    const file = await openGguf(join(GGUF_SHARED_DIR, name));
    const handle = await open(file.path);
    try {
      const wrong: string[] = [];
      for (const tensor of file.tensors) {
        const values = dequantize(tensor.type!.name, await readTensorBytes(handle, tensor));
        const sha = createHash('sha256').update(new Uint8Array(values.buffer)).digest('hex');
        if (
          tensor.type!.name !== tensors[tensor.name]?.type ||
          sha !== tensors[tensor.name]?.sha256
        )
          wrong.push(tensor.name);
      }
      const types = [...new Set(file.tensors.map((x) => x.type!.name))].join(', ');
      t.same(
        wrong,
        [],
        `${basename(file.path)}: all ${file.tensors.length} tensors (${types}) bit-exact`,
      );
    } finally {
      await handle.close();
    }
  }
});

t.test('quantized matrices stack and reorder rows without changing a weight', async (t) => {
  const file = await openGguf(join(GGUF_FIXTURES_DIR, 'dequant-types.gguf'));
  const handle = await open(file.path);
  t.teardown(() => handle.close());
  const matrix = async (name: string) => {
    const tensor = file.tensors.find((x) => x.name === name)!;
    return mapToMatMulNBits(
      tensor.type!.name,
      await readTensorBytes(handle, tensor),
      tensor.ne[1]!,
      tensor.ne[0]!,
    );
  };
  const q4 = reshapeQuantized(await matrix('q4_0'), 8, 16);
  const q6 = await matrix('q6_k');
  const stacked = stackQuantized([q4, q6]);
  const values = dequantizeBlockwise(stacked);
  t.equal(
    firstDifference(values.subarray(0, 512), dequantizeBlockwise(q4)),
    '',
    'the first part on top',
  );
  t.equal(firstDifference(values.subarray(512), dequantizeBlockwise(q6)), '', 'the second below');
  const swapped = dequantizeBlockwise(reorderQuantizedRows(stacked, [3, 2, 1, 0]));
  t.equal(
    firstDifference(swapped.subarray(0, 256), values.subarray(768)),
    '',
    'row 3 first after reordering',
  );
  t.throws(() => reshapeQuantized(q6, 4, 16), /without loss/, 'narrowing codes is refused');
});
