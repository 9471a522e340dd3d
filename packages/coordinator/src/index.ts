/**
 * @swarmbee/coordinator — the worker registry, deployment, the micro-batch
 * scheduler and the OpenAI-compatible HTTP API.
 */

export * from './api/admin.js';
export * from './api/completions.js';
export * from './api/errors.js';
export * from './api/intake.js';
export * from './api/json-body.js';
export * from './api/requests.js';
export * from './api/routing.js';
export * from './api/schemas.js';
export * from './api/server.js';
export * from './api-client.js';
export * from './cluster/coordinator.js';
export * from './cluster/coordinator-options.js';
export * from './cluster/deployer.js';
export * from './cluster/deployment.js';
export * from './cluster/even-plan.js';
export * from './cluster/plan-memory.js';
export * from './cluster/planning.js';
export * from './cluster/profiler.js';
export * from './cluster/reconfigurations.js';
export * from './cluster/remote-transport.js';
export * from './cluster/replan-policy.js';
export * from './cluster/shard-store.js';
export * from './cluster/shard-transfer.js';
export * from './cluster/worker-link.js';
export * from './completion-request.js';
export * from './discovery.js';
export * from './drift/drift-estimate.js';
export * from './drift/drift-monitor.js';
export * from './generation-service.js';
export * from './local-transport.js';
export * from './metrics.js';
export * from './prompt/prompt.js';
export * from './prompt/tokenizer-pool.js';
export * from './scheduler.js';
export * from './stop-matcher.js';
export * from './text-stream.js';
