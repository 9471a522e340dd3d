/** The scheduler, service and HTTP API over an in-process pipeline (no workers). */
import { readFile } from 'node:fs/promises';
import { createApi, GenerationService, Metrics, TokenizerPool } from '@swarmbee/coordinator';
import { LocalPipeline, pipelineTransport, Scheduler } from '@swarmbee/engine';
import { loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';

t.test(
  'completions over a 2-stage local pipeline: references, batching, errors, streaming',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const pipeline = await LocalPipeline.create(dir, { stages: 2 });
    t.teardown(() => pipeline.close());
    const scheduler = new Scheduler(pipelineTransport(pipeline), {
      maxInFlight: 2,
      prefillChunkTokens: 3,
    });
    const { config, name } = dir.manifest;
    const pool = await TokenizerPool.start(dir);
    t.teardown(() => pool.close());
    const service = new GenerationService({
      scheduler,
      tokenizer: await loadTokenizer(dir),
      prompts: pool,
      model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
      limits: { maxQueued: 4, maxActive: 4 },
    });
    const metrics = new Metrics({
      queued: () => service.queued,
      active: () => service.active,
      inFlight: () => scheduler.inFlight,
      stages: () => [],
    });
    const app = createApi({
      service: () => service,
      health: () => ({ ready: true }),
      metrics,
      modelName: name,
    });
    t.teardown(() => app.close());

    const post = (url: string, payload: unknown) =>
      app.inject({ method: 'POST', url, payload: payload as object });
    const once = await post('/v1/completions', {
      prompt: 'Once upon a time',
      steps: 64,
      temperature: 0,
      echo: true,
    });
    t.equal(once.statusCode, 200, once.body);
    t.equal(
      `${once.json().choices[0].text}\n`,
      await readFile(STORIES260K.refOnceUponATime, 'utf8'),
    );
    const none = await post('/v1/completions', {
      prompt: [1],
      steps: 200,
      temperature: 0,
      echo: true,
    });
    t.equal(`${none.json().choices[0].text}\n`, await readFile(STORIES260K.refNoPrompt, 'utf8'));

    const prompts = [
      'Once upon a time',
      'The cat',
      'Lily and Tom',
      'A big red ball',
      'Hi',
      'One day, a little bird',
      'Tim was sad',
      'The sun',
    ];
    const alone: string[] = [];
    for (const prompt of prompts)
      alone.push(
        (await post('/v1/completions', { prompt, max_tokens: 40, temperature: 0 })).json()
          .choices[0].text,
      );
    const together = await Promise.all(
      prompts
        .slice(0, 4)
        .map((prompt) => post('/v1/completions', { prompt, max_tokens: 40, temperature: 0 })),
    );
    together.forEach((r, i) => {
      t.equal(r.json().choices[0].text, alone[i], `concurrent "${prompts[i]}" equals alone`);
    });

    const streamed = await post('/v1/completions', {
      prompt: 'Once upon a time',
      steps: 64,
      temperature: 0,
      stream: true,
      echo: true,
    });
    t.equal(streamed.headers['content-type'], 'text/event-stream; charset=utf-8');
    const events = streamed.body
      .split('\n\n')
      .filter(Boolean)
      .map((e) => e.replace(/^data: /, ''));
    t.equal(events.at(-1), '[DONE]');
    const text = events
      .slice(0, -1)
      .map((e) => JSON.parse(e).choices[0].text)
      .join('');
    t.equal(`${text}\n`, await readFile(STORIES260K.refOnceUponATime, 'utf8'));

    const chat = await post('/v1/chat/completions', {
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 20,
      temperature: 0,
      stop: ['.'],
    });
    t.equal(chat.statusCode, 200);
    t.equal(chat.json().choices[0].finish_reason, 'stop');
    t.notMatch(
      chat.json().choices[0].message.content,
      /\./,
      'the stop string ends the text and is not part of it',
    );

    // Sampled stories end with BOS, run.c's stop token; ignore_eos runs past it.
    let stopped: { seed: number; ids: number[] } | undefined;
    for (let seed = 1; seed <= 20 && !stopped; seed++) {
      const body = { prompt: 'Once upon a time', max_tokens: 400, temperature: 1, seed };
      const choice = (await post('/v1/completions', body)).json().choices[0];
      if (choice.finish_reason === 'stop') stopped = { seed, ids: choice.token_ids };
    }
    t.ok(stopped, 'a sampled story ends at an end-of-sequence token within 20 seeds');
    if (stopped) {
      const past = await post('/v1/completions', {
        prompt: 'Once upon a time',
        max_tokens: 400,
        temperature: 1,
        seed: stopped.seed,
        ignore_eos: true,
      });
      const choice = past.json().choices[0];
      t.equal(choice.finish_reason, 'length', 'ignore_eos runs to max_tokens');
      t.equal(past.json().usage.completion_tokens, 400);
      t.same(
        choice.token_ids.slice(0, stopped.ids.length),
        stopped.ids,
        'the same tokens up to where the plain request stopped',
      );
    }

    const bad: [unknown, number, string][] = [
      [{ prompt: new Array(600).fill(5), max_tokens: 1 }, 400, 'SWARMBEE_ERR_CONTEXT_OVERFLOW'],
      [{ prompt: [1, 999], max_tokens: 1 }, 400, 'SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB'],
      [{ prompt: 'x', top_p: 2 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
      [{ prompt: 'x', temperature: -1 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
      [{ max_tokens: 3 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
    ];
    for (const [payload, status, code] of bad) {
      const r = await post('/v1/completions', payload);
      t.equal(r.statusCode, status, JSON.stringify(payload).slice(0, 60));
      t.equal(r.json().error.code, code);
    }
    const huge = await app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { prompt: 'x'.repeat(2_000_000) },
    });
    t.equal(huge.statusCode, 413);
    t.equal(huge.json().error.code, 'SWARMBEE_ERR_REQUEST_TOO_LARGE');
    const full = await Promise.all(
      Array.from({ length: 12 }, () => post('/v1/completions', { prompt: 'x', max_tokens: 30 })),
    );
    t.ok(
      full.some((r) => r.statusCode === 429 && r.json().error.code === 'SWARMBEE_ERR_QUEUE_FULL'),
      'a full queue answers 429',
    );
    t.ok(
      full.some((r) => r.statusCode === 200),
      'requests within the limit are served',
    );

    const models = await app.inject({ method: 'GET', url: '/v1/models' });
    t.equal(models.json().data[0].id, name);
    const prom = await app.inject({ method: 'GET', url: '/metrics' });
    t.match(prom.body, /swarmbee_generated_tokens_total \d+/);
    t.equal(scheduler.active, 0, 'nothing left running');
  },
);
