/**
 * `POST /swarmbee/finetune`: fine-tune LoRA adapters on the deployed cluster. The body
 * carries the JSONL data (and evaluation sets) and the run's settings — the CLI's
 * `FinetuneSettings`, every key named; an unknown key is refused. The answer is a stream
 * of server-sent events: the run's progress (`start`, `step`, `checkpoint`, `eval`,
 * `recover`), then `result` with the adapter's PEFT files (base64), or an error body. With
 * `federated` instead of `data`, the data owners train rounds on their own data: events
 * `federated` and `round`, then `federated-result`.
 * The client closing the stream stops the run after its current step.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { LEARNING_RATE_SCHEDULES, PIPELINE_SCHEDULES } from '@swarmbee/engine';
import { ACTIVATION_POLICIES, LORA_TARGETS } from '@swarmbee/model';
import type { FinetuneEvent } from '@swarmbee/train';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { FederatedEvent, FederatedRequest } from '../training/federated-rounds.js';
import type {
  FederatedJobResult,
  FinetuneJobRequest,
  FinetuneJobResult,
} from '../training/finetune-jobs.js';
import { toApiError } from './errors.js';
import { parseBody } from './schemas.js';
import { EventStream } from './sse.js';

export type FinetuneHandler = (
  request: FinetuneJobRequest,
  onEvent: (event: FinetuneEvent) => void,
  signal: AbortSignal,
) => Promise<FinetuneJobResult>;

export type FederatedHandler = (
  request: FederatedRequest,
  onEvent: (event: FederatedEvent) => void,
  signal: AbortSignal,
) => Promise<FederatedJobResult>;

/** Largest body of `POST /swarmbee/finetune` (its data and evaluation sets), bytes. */
export const FINETUNE_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

/** Events of `POST /swarmbee/finetune`. */
export type FinetuneStreamEvent =
  | FinetuneEvent
  | ({ type: 'result' } & FinetuneJobResult)
  | FederatedEvent
  | ({ type: 'federated-result' } & FederatedJobResult);

const int = (min: number) => z.number().int().min(min).describe(`expected an integer ≥ ${min}`);
const number = (what: string) => z.number().min(0).describe(`expected a number ≥ 0 (${what})`);

const settingsSchema = z
  .strictObject({
    rank: int(1),
    alpha: number('LoRA alpha'),
    targets: z
      .array(z.enum(LORA_TARGETS))
      .min(1)
      .describe(`expected an array of ${LORA_TARGETS.join(', ')}`),
    layers: z.array(int(0)).optional(),
    learningRate: number('learning rate'),
    schedule: z
      .enum(LEARNING_RATE_SCHEDULES)
      .describe(`expected one of ${LEARNING_RATE_SCHEDULES.join(', ')}`),
    warmupSteps: int(0),
    weightDecay: number('weight decay'),
    maxGradNorm: number('gradient norm'),
    steps: int(1),
    microBatchSize: int(1),
    accumulation: int(1),
    seqLen: int(1),
    truncate: z.boolean().describe('expected true or false'),
    stages: int(1),
    pipelineSchedule: z
      .enum(PIPELINE_SCHEDULES)
      .describe(`expected one of ${PIPELINE_SCHEDULES.join(', ')}`),
    activations: z
      .enum(ACTIVATION_POLICIES)
      .describe(`expected one of ${ACTIVATION_POLICIES.join(', ')}`),
    seed: int(0),
    checkpointInterval: int(0),
    keepCheckpoints: int(1),
    threads: int(1).optional(),
  })
  .describe('expected the run settings (FinetuneSettings), every key known');

const bodySchema = z
  .strictObject({
    settings: settingsSchema,
    data: z
      .string()
      .min(1)
      .optional()
      .describe('expected the JSONL training records as a string (not with federated)'),
    federated: z
      .strictObject({
        rounds: int(1),
        local_steps: int(1),
        proximal_mu: number('FedProx mu').optional(),
        bandit: z.boolean().optional().describe('expected true or false'),
        min_owners: int(1).optional(),
        prune_layers: int(0).optional(),
      })
      .optional()
      .describe(
        'expected {rounds, local_steps, proximal_mu?, bandit?, min_owners?, prune_layers?}',
      ),
    eval_data: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(256),
          text: z.string().min(1),
        }),
      )
      .max(16)
      .optional()
      .describe('expected an array of {name, text} evaluation sets'),
    pin_private: z.boolean().optional().describe('expected true or false'),
  })
  .describe('expected a JSON object');

export function finetuneRoutes(
  app: FastifyInstance,
  finetune: FinetuneHandler,
  federated: FederatedHandler,
): void {
  app.post(
    '/swarmbee/finetune',
    {
      config: { access: 'guarded', jsonBody: true },
      bodyLimit: FINETUNE_BODY_LIMIT_BYTES,
    },
    async (request, reply) => {
      const body = parseBody(bodySchema, request.body);
      if ((body.data === undefined) === (body.federated === undefined))
        throw new InvalidArgumentError(
          body.data === undefined
            ? 'data: expected the JSONL training records, or federated rounds over the data owners'
            : 'data: federated rounds train on the data owners’ own data; send no data with them',
          { param: 'data' },
        );
      reply.hijack();
      const events = new EventStream(reply.raw);
      const stop = new AbortController();
      reply.raw.on('close', () => stop.abort(new Error('the client closed the stream')));
      try {
        if (body.federated) {
          const { federated: rounds } = body;
          const result = await federated(
            {
              settings: body.settings,
              rounds: rounds.rounds,
              localSteps: rounds.local_steps,
              ...(rounds.proximal_mu === undefined ? {} : { proximalMu: rounds.proximal_mu }),
              ...(rounds.bandit === undefined ? {} : { bandit: rounds.bandit }),
              ...(rounds.min_owners === undefined ? {} : { minOwners: rounds.min_owners }),
              ...(rounds.prune_layers === undefined ? {} : { pruneLayers: rounds.prune_layers }),
            },
            (event) => events.send(event satisfies FinetuneStreamEvent),
            stop.signal,
          );
          events.send({ type: 'federated-result', ...result } satisfies FinetuneStreamEvent);
          events.end();
          return reply;
        }
        const result = await finetune(
          {
            settings: body.settings,
            data: body.data!,
            ...(body.eval_data ? { evalData: body.eval_data } : {}),
            ...(body.pin_private === undefined ? {} : { pinPrivate: body.pin_private }),
          },
          (event) => events.send(event satisfies FinetuneStreamEvent),
          stop.signal,
        );
        events.send({ type: 'result', ...result } satisfies FinetuneStreamEvent);
      } catch (error) {
        events.send(toApiError(error).body);
      }
      events.end();
      return reply;
    },
  );
}
