/** A BatchTransport over an in-process pipeline: the scheduler and API without a network. */
import type { Pipeline } from '@swarmbee/engine';
import type { BatchTransport } from './scheduler.js';

export function pipelineTransport(pipeline: Pipeline): BatchTransport {
  return {
    run: (batch) => pipeline.step({ rows: batch.rows, tokens: batch.tokens }),
    release: (seqIds) => {
      void pipeline.release(seqIds).catch(() => {});
    },
  };
}
