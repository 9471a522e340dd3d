/** The coordinator's HTTP API as its options configure it: created and bound, or closed again. */
import type { FastifyInstance } from 'fastify';
import { type ApiOptions, createApi, listenApi } from '../api/server.js';
import { type CoordinatorOptions, DEFAULT_API_PORT } from './coordinator-options.js';

/** What the coordinator itself answers the API with. */
export type CoordinatorApiParts = Pick<
  ApiOptions,
  'service' | 'health' | 'metrics' | 'modelName' | 'models' | 'admin'
>;

/** Creates the API and binds its port; a port that cannot be had is a coded error, nothing left open. */
export async function serveCoordinatorApi(
  options: CoordinatorOptions,
  parts: CoordinatorApiParts,
): Promise<{ api: FastifyInstance; url: string }> {
  const api = createApi({
    ...parts,
    apiKey: options.apiKey,
    benchDir: options.benchDir,
    ...(options.tls ? { tls: options.tls } : {}),
    ...options.http,
    bodyLimitBytes: options.limits?.maxBodyBytes,
  });
  try {
    const url = await listenApi(api, {
      host: options.apiHost ?? '127.0.0.1',
      port: options.apiPort ?? DEFAULT_API_PORT,
      tls: options.tls !== undefined,
    });
    return { api, url };
  } catch (error) {
    await api.close();
    throw error;
  }
}
