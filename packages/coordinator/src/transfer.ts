/**
 * @swarmbee/coordinator/transfer — the coordinator's shard transfer on its own, without a
 * model or a plan: a control server workers join (`transferServer`, through the coordinator's
 * WorkerRegistry), a worker's control link, and `sendShard`.
 * The transfer benchmark and tests drive these directly; a coordinator uses them inside
 * `Coordinator`, so they are not part of the package's main entry point.
 */
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_CORRUPT_RESENDS,
  DEFAULT_TRANSFER_STALL_TIMEOUT_MS,
  DEFAULT_VERIFY_BYTES_PER_SECOND,
  sendShard,
  type TransferableShard,
  type TransferOptions,
} from './cluster/shard-transfer.js';
export { type TransferServer, transferServer } from './cluster/transfer-server.js';
export { WorkerLink } from './cluster/worker-link.js';
export { WorkerRegistry, type WorkerRegistryEvents } from './cluster/worker-registry.js';
