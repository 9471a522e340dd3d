/**
 * The reference for imported ONNX decoders: a GPT-2-style decoder-with-past graph
 * run whole and directly with onnxruntime-node (no SwarmBee code in the loop), and
 * the golden ids of tiny-random-gpt2-fp32's README. Half-precision logits are widened.
 */
import ort from 'onnxruntime-node';

/** onnxruntime-genai's GreedySearchGptFp32: these prompts, greedy, to 10 tokens. */
export const GPT2_GOLDEN = {
  prompts: [
    [0, 0, 0, 52],
    [0, 0, 195, 731],
  ],
  ids: [
    [0, 0, 0, 52, 204, 204, 204, 204, 204, 204],
    [0, 0, 195, 731, 731, 114, 114, 114, 114, 114],
  ],
};

export const GPT2_VOCAB = 1000;

/** How a decoder-with-past graph names and shapes its IO: enough to run it without SwarmBee. */
export interface DecoderNaming {
  /** Per layer: past input names (one stacked, or key and value), and the presents in the same order. */
  past: string[][];
  present: string[][];
  kv: 'stacked' | 'separate';
  kvHeads: number;
  headDim: number;
  ids: 'int32' | 'int64';
  vocab: number;
}

export const GPT2_NAMING: DecoderNaming = {
  past: [0, 1, 2, 3, 4].map((l) => [`past_${l}`]),
  present: [0, 1, 2, 3, 4].map((l) => [`present_${l}`]),
  kv: 'stacked',
  kvHeads: 4,
  headDim: 8,
  ids: 'int32',
  vocab: GPT2_VOCAB,
};

export interface ReferenceStep {
  /** [B, T, vocab] */
  logits: Float32Array;
  /** The presents, to feed back as pasts. */
  presents: ort.Tensor[][];
}

/** The unsplit graph at `path`, fed equal-length rows with an all-ones mask. */
export class DecoderReference {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly naming: DecoderNaming,
  ) {}

  static async open(path: string, naming: DecoderNaming = GPT2_NAMING): Promise<DecoderReference> {
    const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
    return new DecoderReference(session, naming);
  }

  /** One forward pass of `rows` (all the same length) after `past` positions held in `presents`. */
  async step(rows: number[][], past: number, presents?: ort.Tensor[][]): Promise<ReferenceStep> {
    const { naming } = this;
    const B = rows.length;
    const T = rows[0]!.length;
    const ints = (values: number[], dims: number[]) =>
      naming.ids === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims)
        : new ort.Tensor('int32', Int32Array.from(values), dims);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: ints(rows.flat(), [B, T]),
      position_ids: ints(
        rows.flatMap((r) => r.map((_, i) => past + i)),
        [B, T],
      ),
      attention_mask: ints(new Array(B * (past + T)).fill(1), [B, past + T]),
    };
    const meta = this.session.inputMetadata.find((m) => m.name === naming.past[0]![0]);
    const half = meta !== undefined && 'type' in meta && meta.type === 'float16';
    const dims =
      naming.kv === 'stacked'
        ? [2, B, naming.kvHeads, 0, naming.headDim]
        : [B, naming.kvHeads, 0, naming.headDim];
    naming.past.forEach((names, l) => {
      names.forEach((name, part) => {
        feeds[name] =
          presents?.[l]?.[part] ??
          (half
            ? new ort.Tensor('float16', new Uint16Array(0), dims)
            : new ort.Tensor('float32', new Float32Array(0), dims));
      });
    });
    const out = await this.session.run(feeds);
    const logits = out.logits!.data as Float32Array | Uint16Array;
    return {
      logits: logits instanceof Uint16Array ? Float32Array.from(logits, halfToFloat) : logits,
      presents: naming.present.map((names) => names.map((name) => out[name]!)),
    };
  }

  /** Greedy ids to `length` tokens, and the logits of every step's last position (row by row). */
  async greedy(
    prompts: number[][],
    length: number,
  ): Promise<{ ids: number[][]; logits: Float32Array[] }> {
    const vocab = this.naming.vocab;
    const ids = prompts.map((p) => [...p]);
    const logits: Float32Array[] = [];
    let feed = prompts;
    let past = 0;
    let presents: ort.Tensor[][] | undefined;
    while (ids[0]!.length < length) {
      const out = await this.step(feed, past, presents);
      const T = feed[0]!.length;
      past += T;
      presents = out.presents;
      feed = ids.map((row, b) => {
        const last = out.logits.subarray((b * T + T - 1) * vocab, (b * T + T) * vocab);
        logits.push(last.slice());
        const next = argmax(last);
        row.push(next);
        return [next];
      });
    }
    return { ids, logits };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** An IEEE 754 half's bits as a number (fp16 logits of a half-precision export). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Every way to cut `layers` layers into contiguous stages: all 2^(layers-1) sets of cut points. */
export function everySplit(layers: number): { start: number; end: number }[][] {
  const splits: { start: number; end: number }[][] = [];
  for (let mask = 0; mask < 2 ** (layers - 1); mask++) {
    const bounds = [0];
    for (let cut = 1; cut < layers; cut++) if (mask & (1 << (cut - 1))) bounds.push(cut);
    bounds.push(layers);
    splits.push(bounds.slice(1).map((end, i) => ({ start: bounds[i]!, end })));
  }
  return splits;
}
