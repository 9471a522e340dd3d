/**
 * @swarmbee/coordinator — the worker registry, deployment, the micro-batch
 * scheduler and the OpenAI-compatible HTTP API.
 */
export * from './api/errors.js';
export * from './api/schemas.js';
export * from './api/server.js';
export * from './generation-service.js';
export * from './local-transport.js';
export * from './metrics.js';
export * from './scheduler.js';
export * from './text-stream.js';
