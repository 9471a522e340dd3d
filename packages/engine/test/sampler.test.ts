import t from 'tap';
import { argmax, Sampler, XorShiftRandom } from '../src/sampler.js';

t.test("xorshift stream equals run.c's random_u32 / random_f32", async (t) => {
  // Computed independently with run.c's formula in 64-bit integers.
  const random = new XorShiftRandom(42);
  t.same(
    [random.nextU32(), random.nextU32(), random.nextU32()],
    [1456360119, 3359763283, 3393612768],
  );
  t.equal(new XorShiftRandom(42).nextF32(), 0.3390852212905884);
});

t.test('greedy picks the first maximum; top-k 1 is greedy at any temperature', async (t) => {
  const logits = Float32Array.from([0.1, 3, -2, 3, 1]);
  t.equal(argmax(logits), 1);
  t.equal(new Sampler({ temperature: 0, topK: 0, topP: 1 }).sample(logits).token, 1);
  for (let seed = 1; seed < 20; seed++)
    t.equal(
      new Sampler({ temperature: 2, topK: 1, topP: 1, seed }).sample(Float32Array.from([0, 5, 1]))
        .token,
      1,
    );
});

t.test('top-p keeps only the nucleus; sampling follows the distribution', async (t) => {
  const logits = Float32Array.from([Math.log(0.6), Math.log(0.3), Math.log(0.1)]);
  const nucleus = new Sampler({ temperature: 1, topK: 0, topP: 0.5, seed: 9 });
  for (let i = 0; i < 200; i++) t.equal(nucleus.sample(logits).token, 0);
  const free = new Sampler({ temperature: 1, topK: 0, topP: 1, seed: 5 });
  const counts = [0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[free.sample(logits).token]!++;
  t.ok(
    Math.abs(counts[0]! / 4000 - 0.6) < 0.04 && Math.abs(counts[2]! / 4000 - 0.1) < 0.03,
    `counts ${counts}`,
  );
  const { logprob } = new Sampler({ temperature: 0, topK: 0, topP: 1 }).sample(logits, true);
  t.ok(Math.abs(logprob - Math.log(0.6)) < 1e-6);
});

/** run.c's sampler as it is written there: top-k and top-p by sorting (the old implementation). */
function sortedReference(
  logits: Float32Array,
  temperature: number,
  topK: number,
  topP: number,
  coin: number,
): number {
  const probs = Float32Array.from(logits, (v) => v / temperature);
  const max = probs.reduce((m, v) => Math.max(m, v), Number.NEGATIVE_INFINITY);
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    probs[i] = Math.exp(probs[i]! - max);
    sum += probs[i]!;
  }
  for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
  if (topK > 0 && topK < probs.length) {
    const threshold = Float32Array.from(probs).sort().reverse()[topK - 1]!;
    let kept = 0;
    let total = 0;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i]! >= threshold && kept < topK) {
        kept++;
        total += probs[i]!;
      } else probs[i] = 0;
    }
    for (let i = 0; i < probs.length; i++) probs[i]! /= total;
  }
  if (topP >= 1) {
    let cdf = 0;
    for (let i = 0; i < probs.length; i++) {
      cdf += probs[i]!;
      if (coin < cdf) return i;
    }
    return probs.length - 1;
  }
  const cutoff = (1 - topP) / (probs.length - 1);
  const order = [...probs.keys()].filter((i) => probs[i]! >= cutoff);
  order.sort((a, b) => probs[b]! - probs[a]! || a - b);
  let cumulative = 0;
  let last = order.length - 1;
  for (let i = 0; i < order.length; i++) {
    cumulative += probs[order[i]!]!;
    if (cumulative > topP) {
      last = i;
      break;
    }
  }
  const r = coin * cumulative;
  let cdf = 0;
  for (let i = 0; i <= last; i++) {
    cdf += probs[order[i]!]!;
    if (r < cdf) return order[i]!;
  }
  return order[last]!;
}

t.test(
  'top-k by selection and top-p from a heap choose what sorting the vocabulary chooses',
  async (t) => {
    const random = new XorShiftRandom(7);
    let compared = 0;
    // 128256: Llama 3's vocabulary.
    for (const vocab of [3, 512, 4096, 128256]) {
      for (const [temperature, topK, topP] of [
        [1, 0, 0.9],
        [0.8, 40, 1],
        [1.2, 40, 0.95],
        [1, 5, 0.5],
        [0.7, 1000, 0.99],
      ] as const) {
        const seed = 1000 + compared;
        const sampler = new Sampler({ temperature, topK, topP, seed });
        const coins = new XorShiftRandom(seed);
        for (let step = 0; step < 8; step++) {
          // Peaked logits with plenty of ties at the bottom (rounded), like a real model's.
          const logits = Float32Array.from(
            { length: vocab },
            () => Math.round((random.nextF32() * 12) ** 1.3) / 4,
          );
          const expected = sortedReference(logits, temperature, topK, topP, coins.nextF32());
          t.equal(
            sampler.sample(logits).token,
            expected,
            `vocab ${vocab} T ${temperature} k ${topK} p ${topP} step ${step}`,
          );
          compared++;
        }
      }
    }
    t.equal(compared, 160);
  },
);
