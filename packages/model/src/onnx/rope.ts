import { headDim, type LlamaConfig } from '@swarmbee/core';

/**
 * RoPE cos/sin tables [maxSeqLen, headDim/2], computed in float32 step by step
 * as llama2.c's run.c does, so positions rotate by exactly the same angles.
 */
export function ropeTables(config: LlamaConfig): { cos: Float32Array; sin: Float32Array } {
  const hd = headDim(config);
  const half = hd / 2;
  const cos = new Float32Array(config.maxSeqLen * half);
  const sin = new Float32Array(config.maxSeqLen * half);
  const f = Math.fround;
  for (let i = 0; i < half; i++) {
    const freq = f(1 / f(config.ropeTheta ** f((2 * i) / hd)));
    for (let pos = 0; pos < config.maxSeqLen; pos++) {
      const angle = f(pos * freq);
      cos[pos * half + i] = Math.cos(angle);
      sin[pos * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
