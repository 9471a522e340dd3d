/**
 * The serve part's roofline counts the weight bytes a decode step reads: a tied LM head reads
 * the whole embedding every token, a head of its own leaves the embedding to a one-row gather.
 */
import { join } from 'node:path';
import { quantizeModel } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { weightBytesReadPerToken } from '../src/scale/serve-part.js';

t.test(
  'a tied head reads the embedding every token; a quantized head of its own does not',
  async (t) => {
    const root = t.testdir();
    const tied = await stories260kDir(t, root);
    if (!tied) return;
    t.ok(tied.manifest.config.sharedClassifier, 'stories260K ties its head to the embedding');
    t.equal(weightBytesReadPerToken(tied.manifest), tied.manifest.weights.bytes);
    const untied = await quantizeModel(tied, { bits: 8, head: true, out: join(root, 'int8') });
    t.notOk(untied.manifest.config.sharedClassifier, '--head gives the head its own tensor');
    t.equal(
      weightBytesReadPerToken(untied.manifest),
      untied.manifest.weights.bytes - untied.manifest.embeddingBytes,
    );
  },
);
