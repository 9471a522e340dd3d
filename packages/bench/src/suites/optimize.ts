/**
 * `npm run bench -- optimize`: what quantization and pruning buy and cost. The 110M
 * synthetic preset's weight bytes and decode tokens/s at fp32, int8 and int4 (against
 * llama.cpp's Q8_0 as a reference), and on stories260K the fidelity of int8, int4 and
 * 1- and 2-layer pruning against fp32 — every check a ratio against a baseline measured
 * in the same run.
 */
import { resultHeader, type Suite } from '../suite.js';
import { fidelityPart } from './optimize-fidelity.js';
import { LLAMACPP_Q8_0_TOKENS_PER_S, speedPart } from './optimize-speed.js';

export const optimizeSuite: Suite = {
  name: 'optimize',
  describe:
    'quantization (int8/int4) and pruning: 110M weight bytes and decode tok/s; stories260K KL, top-1 and perplexity vs fp32',
  async run(context) {
    const started = Date.now();
    const speed = await speedPart(context);
    const fidelity = await fidelityPart(context);
    return {
      suite: 'optimize',
      title: 'Optimize: quantization and layer pruning',
      ...resultHeader(
        context,
        started,
        speed.model,
        'synthetic preset stories110m (speed); stories260K from ../shared/models (fidelity)',
      ),
      options: {
        quick: context.quick,
        blockSize: 32,
        activations: 'int8',
        llamaCppQ8_0TokensPerS: LLAMACPP_Q8_0_TOKENS_PER_S,
      },
      notes: [...speed.notes, ...fidelity.notes],
      metrics: { ...speed.metrics, ...fidelity.metrics },
      tables: [...speed.tables, ...fidelity.tables],
      checks: [...speed.checks, ...fidelity.checks],
      charts: [...speed.charts, ...fidelity.charts],
    };
  },
};
