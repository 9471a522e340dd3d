/**
 * RoPE cos/sin tables [maxSeqLen, headDim/2], one row per position, as the shard
 * graph gathers them. Plain RoPE is computed in float32 step by step as llama2.c's
 * run.c does, so positions rotate by exactly its angles; scaled RoPE follows
 * transformers' `modeling_rope_utils` (float32 inverse frequencies, then the angle
 * `inv_freq · position` in float32, cos and sin times the attention factor).
 */
import { headDim, type LlamaConfig, type RopeScaling, type RopeSpec } from '@swarmbee/core';

const f = Math.fround;

export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
}

export function ropeTables(
  config: LlamaConfig,
  spec: RopeSpec = { theta: config.ropeTheta },
): RopeTables {
  const hd = headDim(config);
  const half = hd / 2;
  const rows = config.maxSeqLen;
  const cos = new Float32Array(rows * half);
  const sin = new Float32Array(rows * half);
  const { scaling } = spec;
  if (!scaling) {
    for (let i = 0; i < half; i++) {
      const freq = f(1 / f(spec.theta ** f((2 * i) / hd)));
      for (let pos = 0; pos < rows; pos++) {
        const angle = f(pos * freq);
        cos[pos * half + i] = Math.cos(angle);
        sin[pos * half + i] = Math.sin(angle);
      }
    }
    return { cos, sin };
  }
  const scale = scaling.type === 'longrope' ? f(scaling.attentionFactor) : 1;
  let freqs = scaling.type === 'dynamic' ? [] : inverseFrequencies(spec.theta, hd, scaling);
  for (let pos = 0; pos < rows; pos++) {
    if (scaling.type === 'dynamic') freqs = dynamicFrequencies(spec.theta, hd, scaling, pos);
    for (let i = 0; i < half; i++) {
      const angle = f(pos * freqs[i]!);
      cos[pos * half + i] = f(f(Math.cos(angle)) * scale);
      sin[pos * half + i] = f(f(Math.sin(angle)) * scale);
    }
  }
  return { cos, sin };
}

/** transformers' `1 / base^(2i/dim)` in float32. */
function baseFrequencies(base: number, hd: number): number[] {
  return Array.from({ length: hd / 2 }, (_, i) => f(1 / f(base ** f((2 * i) / hd))));
}

/** Inverse frequencies of the scalings that do not depend on the position. */
function inverseFrequencies(
  theta: number,
  hd: number,
  scaling: Exclude<RopeScaling, { type: 'dynamic' }>,
): number[] {
  switch (scaling.type) {
    case 'linear':
      return baseFrequencies(theta, hd).map((inv) => f(inv / scaling.factor));
    case 'longrope':
      // 1 / (ext · base^(2i/dim)): the short factors, as every served position is within originalContext.
      return Array.from({ length: hd / 2 }, (_, i) =>
        f(1 / f(f(scaling.shortFactor[i]!) * f(theta ** f((2 * i) / hd)))),
      );
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
      const lowWavelen = originalContext / lowFreqFactor;
      const highWavelen = originalContext / highFreqFactor;
      return baseFrequencies(theta, hd).map((inv) => {
        const wavelen = f((2 * Math.PI) / inv);
        if (wavelen < highWavelen) return inv;
        if (wavelen > lowWavelen) return f(inv / factor);
        const smooth = f(
          f(f(originalContext / wavelen) - lowFreqFactor) / (highFreqFactor - lowFreqFactor),
        );
        return f(f(f(1 - smooth) * f(inv / factor)) + f(smooth * inv));
      });
    }
  }
}

/** Dynamic NTK: the base for a sequence of `pos + 1` positions, as transformers recomputes it per call. */
function dynamicFrequencies(
  theta: number,
  hd: number,
  scaling: Extract<RopeScaling, { type: 'dynamic' }>,
  pos: number,
): number[] {
  const length = Math.max(pos + 1, scaling.originalContext);
  const stretch = f(
    f(f(f(scaling.factor * length) / scaling.originalContext) - (scaling.factor - 1)) **
      (hd / (hd - 2)),
  );
  return baseFrequencies(f(theta * stretch), hd);
}
