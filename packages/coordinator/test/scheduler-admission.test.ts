/**
 * Admission against the stages' KV caches, over a real 2-stage pipeline of stories260K:
 * requests beyond a stage's sequence limit wait in the scheduler and then run whole;
 * one that could never fit is refused before it starts; a batch a stage still refuses
 * is parked and replayed, never failed; and a request's abort listener is removed.
 */
import { getEventListeners } from 'node:events';
import { GenerationService, TokenizerPool } from '@swarmbee/coordinator';
import {
  LocalPipeline,
  pipelineTransport,
  Scheduler,
  type SequenceRequest,
} from '@swarmbee/engine';
import { loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

const PROMPTS = ['Once upon a time', 'The cat', 'Lily and Tom', 'A big red ball', 'Tim was sad'];
const MAX_TOKENS = 30;

function limitsOf(pipeline: LocalPipeline) {
  return pipeline.stages.map((s, stage) => ({ stage, ...s.info.limits }));
}

t.test(
  'requests beyond a stage sequence limit wait for room, then complete with the tokens they get alone',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const pipeline = await LocalPipeline.create(dir, { stages: 2, stage: { maxSequences: 2 } });
    t.teardown(() => pipeline.close());
    const scheduler = new Scheduler(undefined, { maxInFlight: 2 });
    scheduler.attach(pipelineTransport(pipeline), { limits: limitsOf(pipeline) });
    const request = (prompt: string, onToken?: () => void): SequenceRequest => ({
      promptIds: tokenizer.encode(prompt),
      maxTokens: MAX_TOKENS,
      sampling: { temperature: 0, topK: 0, topP: 1 },
      stopIds: [],
      onToken: () => {
        onToken?.();
        return true;
      },
    });
    const alone: number[][] = [];
    for (const prompt of PROMPTS) alone.push((await scheduler.generate(request(prompt))).ids);
    let mostActive = 0;
    let mostWaiting = 0;
    const watch = () => {
      mostActive = Math.max(mostActive, scheduler.active);
      mostWaiting = Math.max(mostWaiting, scheduler.waiting);
    };
    const together = await Promise.all(
      PROMPTS.map((prompt) => scheduler.generate(request(prompt, watch))),
    );
    t.equal(mostActive, 2, 'never more sequences than the stage admits');
    t.equal(mostWaiting, PROMPTS.length - 2, 'the rest waited');
    together.forEach((r, i) => {
      t.same(r.ids, alone[i], `"${PROMPTS[i]}" equals its run alone`);
    });
  },
);

t.test(
  'a request that cannot fit a stage KV budget even alone is refused with 413 before it starts',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const perPosition = 2 * 32 * 4 * 3; // keys and values, kvDim 32, fp32, 3 layers
    const pipeline = await LocalPipeline.create(dir, {
      stages: 2,
      stage: { kvBudgetBytes: 64 * perPosition },
    });
    t.teardown(() => pipeline.close());
    t.equal(pipeline.stages[0]!.info.limits.kvBytesPerPosition, perPosition);
    const scheduler = new Scheduler(undefined, { maxSeqLen: dir.manifest.config.maxSeqLen });
    scheduler.attach(pipelineTransport(pipeline), { limits: limitsOf(pipeline) });
    const { config, name } = dir.manifest;
    const prompts = await TokenizerPool.start(dir, { threads: 1 });
    t.teardown(() => prompts.close());
    const service = new GenerationService({
      scheduler,
      tokenizer: await loadTokenizer(dir),
      prompts,
      model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
    });
    const sampling = { temperature: 0, topK: 0, topP: 1 };
    await t.rejects(service.prepare({ prompt: 'Once upon a time', maxTokens: 100, sampling }), {
      code: 'SWARMBEE_ERR_REQUEST_TOO_LARGE',
      message: /KV cache on stage 0/,
    });
    const fits = await service.complete({ prompt: 'Once upon a time', maxTokens: 20, sampling });
    t.equal(fits.completionTokens, 20, 'a request within the budget runs');
  },
);

t.test(
  'a batch a stage refuses for its KV budget is parked and replayed, never failed',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const tokenizer = await loadTokenizer(dir);
    const pipeline = await LocalPipeline.create(dir, { stages: 2, stage: { maxSequences: 2 } });
    t.teardown(() => pipeline.close());
    const scheduler = new Scheduler(undefined, { maxInFlight: 2 });
    // The scheduler is told more than the stages admit, as if their limits were not known.
    const direct = pipelineTransport(pipeline);
    let refused = 0;
    const counting = {
      run: (batch: Parameters<typeof direct.run>[0]) =>
        direct.run(batch).catch((error: { code?: string }) => {
          if (error.code === 'SWARMBEE_ERR_KV_BUDGET_EXCEEDED') refused++;
          throw error;
        }),
      release: direct.release,
    };
    scheduler.attach(counting, {
      limits: limitsOf(pipeline).map((l) => ({ ...l, maxSequences: 8 })),
    });
    const sampling = { temperature: 0, topK: 0, topP: 1 };
    const generate = (prompt: string) =>
      scheduler.generate({
        promptIds: tokenizer.encode(prompt),
        maxTokens: MAX_TOKENS,
        sampling,
        stopIds: [],
      });
    const alone: number[][] = [];
    for (const prompt of PROMPTS) alone.push((await generate(prompt)).ids);
    const together = await Promise.all(PROMPTS.map(generate));
    t.ok(refused > 0, `the stages refused ${refused} batches for their budget`);
    together.forEach((r, i) => {
      t.same(r.ids, alone[i], `"${PROMPTS[i]}" completes whole`);
    });
  },
);

t.test('a finished request leaves no abort listener on its signal', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const pipeline = await LocalPipeline.create(dir, { stages: 1 });
  t.teardown(() => pipeline.close());
  const scheduler = new Scheduler(pipelineTransport(pipeline));
  const controller = new AbortController();
  const promptIds = (await loadTokenizer(dir)).encode('Once upon a time');
  for (let i = 0; i < 3; i++) {
    await scheduler.generate({
      promptIds,
      maxTokens: 5,
      sampling: { temperature: 0, topK: 0, topP: 1 },
      stopIds: [],
      signal: controller.signal,
    });
  }
  t.equal(getEventListeners(controller.signal, 'abort').length, 0);
  const cancelled = scheduler.generate({
    promptIds,
    maxTokens: 500,
    sampling: { temperature: 0, topK: 0, topP: 1 },
    stopIds: [],
    signal: controller.signal,
  });
  controller.abort();
  await t.rejects(cancelled, { code: 'SWARMBEE_ERR_ABORTED' });
  t.equal(scheduler.active, 0);
});
