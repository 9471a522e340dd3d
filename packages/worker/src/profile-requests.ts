/**
 * A worker's answers to the coordinator's profile requests: `compute` times this
 * device on small shards the coordinator sent (cached per model, runtime and
 * engine settings); `link` measures the data-plane link to another node.
 */
import { freemem } from 'node:os';
import {
  asSwarmBeeError,
  EngineClosedError,
  InvalidArgumentError,
  SWARMBEE_VERSION,
} from '@swarmbee/core';
import type { DeviceEmulation, StageOptions } from '@swarmbee/engine';
import { openShard } from '@swarmbee/model';
import {
  type ClientTlsOptions,
  type ControlMessage,
  connectShaped,
  errorMessageFor,
  type LinkShape,
  measureLink,
  type ProfileRequestMessage,
} from '@swarmbee/protocol';
import { deviceFacts } from './device.js';
import { ProfileCache, type ProfileShards, profileDevice } from './device-profiler.js';
import type { ShardCache } from './shard-cache.js';
import type { StageTimeline } from './stage-timeline.js';

/** Version of the measured timing's shape; cached profiles of another version are measured again. */
export const PROFILE_FORMAT_VERSION = 5;

/** Share of free memory a worker offers when no limit is set. */
export const DEFAULT_MEMORY_SHARE = 0.9;

export interface ProfileContext {
  /** The stage's timeline, when a stage is loaded (answers `timeline` requests). */
  timeline?: StageTimeline;
  name: string;
  token: string;
  tls?: ClientTlsOptions;
  linkShape?: LinkShape;
  cacheDir: string;
  shards: ShardCache;
  engine: StageOptions;
  /** Benchmarks and tests only: the device emulation serving runs under, profiled alike. */
  emulation?: DeviceEmulation | undefined;
  memoryLimitBytes?: number;
  log: (line: string) => void;
}

/** The control message answering `request`: its result, or the error that ended it. */
export async function profileReply(
  request: ProfileRequestMessage,
  context: ProfileContext,
): Promise<ControlMessage> {
  try {
    const result = await answerProfileRequest(request, context);
    return { type: 'profile.result', requestId: request.requestId, result };
  } catch (error) {
    return errorMessageFor(asSwarmBeeError(error), { requestId: request.requestId });
  }
}

export async function answerProfileRequest(
  request: ProfileRequestMessage,
  context: ProfileContext,
): Promise<Record<string, unknown>> {
  const { params } = request;
  if (request.kind === 'link') {
    const channel = await connectShaped(
      String(params.url),
      { token: context.token, role: 'stage', name: `${context.name}/probe`, tls: context.tls },
      context.linkShape,
    );
    try {
      return { ...(await measureLink(channel)) };
    } finally {
      channel.close(1000, 'probe done');
    }
  }
  if (request.kind === 'timeline') {
    return { events: context.timeline?.since(Number(params.since ?? 0)) ?? [] };
  }
  if (request.kind !== 'compute')
    throw new InvalidArgumentError(`unknown profile kind ${request.kind}`);
  const { engine } = context;
  const key = [
    `v${PROFILE_FORMAT_VERSION}`,
    params.modelHash,
    deviceFacts().ortVersion,
    SWARMBEE_VERSION,
    engine.intraOpThreads ?? 'all',
    engine.executionProvider ?? 'cpu',
    context.emulation?.label ?? 'speed1',
  ].join('-');
  const cache = new ProfileCache(context.cacheDir);
  let timing = params.reprofile === true ? undefined : await cache.get(key);
  const cached = timing !== undefined;
  if (!timing) {
    const graph = async (id: unknown) => {
      const offer = await context.shards.offerOf(String(id));
      if (!offer)
        throw new EngineClosedError(
          `profiling shard ${String(id).slice(0, 12)} is not in this worker's cache`,
        );
      return (await openShard(await context.shards.verify(offer))).graph;
    };
    const shards: ProfileShards = {
      first: await graph(params.first),
      last: await graph(params.last),
    };
    if (params.middle !== undefined) shards.middle = await graph(params.middle);
    if (params.span !== undefined) shards.span = await graph(params.span);
    context.log('profiling compute');
    timing = await profileDevice(shards, engine, { emulation: context.emulation });
    await cache.put(key, timing);
  }
  const memoryBytes = context.memoryLimitBytes ?? Math.floor(DEFAULT_MEMORY_SHARE * freemem());
  return {
    timing,
    memoryBytes,
    cached,
    source: `measured by swarmbee ${SWARMBEE_VERSION} (${key})`,
  };
}
