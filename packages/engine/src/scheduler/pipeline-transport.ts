/**
 * The scheduler's transport over an in-process pipeline: `swarmbee generate --model`,
 * `chat --model` and the API without a network use the same scheduler a cluster does,
 * with this in place of the worker links.
 */
import type { Pipeline } from '../pipeline.js';
import type { BatchTransport } from './micro-batch.js';

export function pipelineTransport(pipeline: Pipeline): BatchTransport {
  return {
    run: (batch) => pipeline.step({ rows: batch.rows, tokens: batch.tokens }),
    release: (seqIds) => {
      // Fire and forget, as over the wire: a stage that is closing has freed everything.
      void pipeline.release(seqIds).catch(() => {});
    },
  };
}
