/** SwarmBee's version, reported in manifests, benchmarks and the API. */
export const SWARMBEE_VERSION = '0.1.0';
