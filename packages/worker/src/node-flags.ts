/**
 * Node.js flags for long-running SwarmBee processes. With V8's default young
 * generation, frames still in flight when a scavenge runs get promoted, and the
 * old generation (and RSS) climbs for hundreds of requests before a major
 * collection; a larger young generation lets them die young. Measured by
 * `npm run bench -- soak`: worker RSS over 300 requests flat within 3 % with
 * it, climbing about 15 % before the first major collection without.
 * Every launcher we ship passes them (systemd units, the Docker image,
 * `swarmbee up`, the benchmarks).
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
