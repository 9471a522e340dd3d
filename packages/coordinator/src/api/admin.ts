/**
 * SwarmBee's own routes beside the OpenAI ones: the cluster as deployed, profiling
 * (progress as server-sent events, then the profile), and re-planning on demand.
 */
import type { ClusterProfile, Plan } from '@swarmbee/core';
import type { ProgressEvent, ProgressFn } from '@swarmbee/model';
import type { PlanResult } from '@swarmbee/planner';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PlanningOptions } from '../cluster/planning.js';
import { toApiError } from './errors.js';
import { type FederatedHandler, type FinetuneHandler, finetuneRoutes } from './finetune.js';
import { parseBody } from './schemas.js';
import { EventStream } from './sse.js';

export interface AdminHandlers {
  profile: (reprofile: boolean, progress: ProgressFn) => Promise<ClusterProfile>;
  replan: (planning?: PlanningOptions) => Promise<Plan | PlanResult>;
  cluster: () => Record<string, unknown>;
  timeline: (since: number) => Promise<unknown>;
  finetune: FinetuneHandler;
  federated: FederatedHandler;
}

/** Largest body of an admin route, bytes. */
export const ADMIN_BODY_LIMIT_BYTES = 64 * 1024;

const positive = (what: string) =>
  z.number().int().positive().optional().describe(`expected an integer ≥ 1 (${what})`);

const profileBody = z
  .object({
    reprofile: z.boolean().optional().describe('expected true or false'),
  })
  .optional()
  .describe('expected a JSON object');
const replanBody = z
  .object({
    planner: z
      .enum(['dp', 'ga', 'pso', 'solo', 'even', 'memory', 'auto'])
      .optional()
      .describe('expected one of dp, ga, pso, solo, even, memory, auto'),
    objective: z
      .enum(['latency', 'throughput'])
      .optional()
      .describe('expected latency or throughput'),
    pin_first: z.string().optional().describe("expected a string (a worker's name)"),
    pin_last: z.string().optional().describe("expected a string (a worker's name)"),
    context_tokens: positive('tokens'),
    prompt_tokens: positive('tokens'),
    decode_context_tokens: positive('tokens'),
    streams: positive('streams'),
    risk: z.enum(['p50', 'p90']).optional().describe('expected p50 or p90'),
    micro_batch_candidates: z
      .array(z.number().int().positive())
      .min(1)
      .max(16)
      .optional()
      .describe('expected an array of 1 to 16 integers ≥ 1'),
  })
  .optional()
  .describe('expected a JSON object');

/** Events of `POST /swarmbee/profile`: progress while measuring, then the profile (or an error). */
export type ProfileEvent =
  | { type: 'progress'; progress: ProgressEvent }
  | { type: 'profile'; profile: ClusterProfile };

const GUARDED = { config: { access: 'guarded' } } as const;
/** Admin bodies are a few fields: parsed here, and small. */
const GUARDED_JSON = {
  config: { access: 'guarded', jsonBody: true },
  bodyLimit: ADMIN_BODY_LIMIT_BYTES,
} as const;

export function adminRoutes(app: FastifyInstance, admin: AdminHandlers): void {
  app.get('/swarmbee/cluster', GUARDED, async () => admin.cluster());
  finetuneRoutes(app, admin.finetune, admin.federated);
  app.get('/swarmbee/timeline', GUARDED, async (request) => {
    const since = Number((request.query as { since?: string }).since ?? 0);
    return { stages: await admin.timeline(Number.isFinite(since) ? since : 0) };
  });

  app.post('/swarmbee/profile', GUARDED_JSON, async (request, reply) => {
    const body = parseBody(profileBody, request.body);
    reply.hijack();
    const events = new EventStream(reply.raw);
    try {
      const profile = await admin.profile(body?.reprofile ?? false, (progress) =>
        events.send({ type: 'progress', progress } satisfies ProfileEvent),
      );
      events.send({ type: 'profile', profile } satisfies ProfileEvent);
    } catch (error) {
      events.send(toApiError(error).body);
    }
    events.end();
    return reply;
  });

  app.post('/swarmbee/replan', GUARDED_JSON, async (request) => {
    const body = parseBody(replanBody, request.body);
    const planning: PlanningOptions = {};
    if (body?.planner) planning.planner = body.planner;
    if (body?.objective) planning.objective = body.objective;
    if (body?.pin_first) planning.pinFirst = body.pin_first;
    if (body?.pin_last) planning.pinLast = body.pin_last;
    const workload: NonNullable<PlanningOptions['workload']> = {};
    if (body?.context_tokens) workload.contextTokens = body.context_tokens;
    if (body?.prompt_tokens) workload.promptTokens = body.prompt_tokens;
    if (body?.decode_context_tokens) workload.decodeContextTokens = body.decode_context_tokens;
    if (body?.streams) workload.streams = body.streams;
    if (body?.risk) workload.risk = body.risk;
    if (Object.keys(workload).length > 0) planning.workload = workload;
    if (body?.micro_batch_candidates) planning.microBatchCandidates = body.micro_batch_candidates;
    return { plan: await admin.replan(planning) };
  });
}
