/**
 * The coordinator's HTTP API over a real in-process pipeline (stories260K in two stages,
 * its tokenizer in a pool of threads), listening on 127.0.0.1:0, for tests that talk to
 * it over sockets. The cluster routes are served by handlers that count their calls, so a
 * test can tell whether a request reached one.
 */

import type { AddressInfo } from 'node:net';
import {
  type ApiOptions,
  createApi,
  GenerationService,
  Metrics,
  type ServiceLimits,
  TokenizerPool,
} from '@swarmbee/coordinator';
import { LocalPipeline, pipelineTransport, Scheduler } from '@swarmbee/engine';
import { loadTokenizer, type ModelDir } from '@swarmbee/model';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { stories260kDir } from '../../../../test/helpers/stories260k.js';

export interface LocalApi {
  app: FastifyInstance;
  port: number;
  url: string;
  model: ModelDir;
  service: GenerationService;
  scheduler: Scheduler;
  /** Calls that reached each cluster handler, and the completion service. */
  calls: {
    cluster: number;
    timeline: number;
    profile: number;
    replan: number;
    finetune: number;
    service: number;
  };
}

export interface LocalApiOptions
  extends Partial<Omit<ApiOptions, 'service' | 'health' | 'metrics' | 'modelName' | 'admin'>> {
  limits?: Partial<ServiceLimits>;
  tokenizerThreads?: number;
}

/** Starts the API (or skips the test when stories260K is missing); teardown stops it. */
export async function startLocalApi(
  t: Test,
  options: LocalApiOptions = {},
): Promise<LocalApi | undefined> {
  const { limits, tokenizerThreads, ...api } = options;
  const model = await stories260kDir(t);
  if (!model) return undefined;
  const pipeline = await LocalPipeline.create(model, { stages: 2 });
  const prompts = await TokenizerPool.start(model, {
    ...(tokenizerThreads === undefined ? {} : { threads: tokenizerThreads }),
  });
  const scheduler = new Scheduler(pipelineTransport(pipeline), { maxInFlight: 2 });
  const { config, name } = model.manifest;
  const service = new GenerationService({
    scheduler,
    tokenizer: await loadTokenizer(model),
    prompts,
    model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
    limits: { maxActive: 8, maxQueued: 16, ...limits },
  });
  const metrics = new Metrics({
    queued: () => service.queued,
    active: () => service.active,
    inFlight: () => scheduler.inFlight,
    stages: () => [],
  });
  const calls = { cluster: 0, timeline: 0, profile: 0, replan: 0, finetune: 0, service: 0 };
  const app = createApi({
    ...api,
    service: () => {
      calls.service++;
      return service;
    },
    health: () => ({ ready: true }),
    metrics,
    modelName: name,
    bodyLimitBytes: api.bodyLimitBytes ?? limits?.maxBodyBytes,
    admin: {
      cluster: () => {
        calls.cluster++;
        return { state: 'ready' };
      },
      timeline: async () => {
        calls.timeline++;
        return [];
      },
      profile: async () => {
        calls.profile++;
        throw new Error('not measured in this test');
      },
      replan: async () => {
        calls.replan++;
        return { stages: [] } as never;
      },
      finetune: async () => {
        calls.finetune++;
        throw new Error('not trained in this test');
      },
      federated: async () => {
        calls.finetune++;
        throw new Error('not trained in this test');
      },
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    await prompts.close();
    await pipeline.close();
  });
  const { port } = app.server.address() as AddressInfo;
  return { app, port, url: `http://127.0.0.1:${port}`, model, service, scheduler, calls };
}
