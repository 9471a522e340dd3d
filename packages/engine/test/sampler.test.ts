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
