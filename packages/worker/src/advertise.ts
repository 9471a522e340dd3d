/**
 * The address a worker tells the coordinator (and so its upstream stage) to
 * dial. A wildcard listen address (`0.0.0.0`, `::`) is not dialable, so it is
 * replaced by this machine's first external IPv4 address, else its hostname.
 */
import { hostname, type NetworkInterfaceInfo, networkInterfaces } from 'node:os';

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

export function reachableHost(
  listenHost: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string {
  if (!WILDCARDS.has(listenHost)) return listenHost;
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return hostname();
}
