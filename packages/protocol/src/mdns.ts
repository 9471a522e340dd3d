/**
 * What the coordinator's mDNS announcement and the worker's discovery agree on: the
 * DNS-SD service type, the TXT layout's version, where multicast DNS runs, and the
 * cluster fingerprint announced instead of the token. The announcing and the finding
 * (bonjour-service) live in packages/coordinator and packages/worker `discovery.ts`.
 */
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';

/** DNS-SD service type: `_swarmbee._tcp`. */
export const MDNS_SERVICE_TYPE = 'swarmbee';
/** Version of the TXT record's layout. */
export const MDNS_TXT_VERSION = '1';

/** Where mDNS runs. Defaults: every interface, port 5353, as any mDNS responder. */
export interface MdnsOptions {
  /** Multicast interface address, e.g. 127.0.0.1 to stay on loopback. Default: all. */
  interface?: string;
  /** UDP port. Default 5353. */
  port?: number;
  /** Address the socket binds to. Default: the interface (0.0.0.0 when there is none). */
  bind?: string;
}

/**
 * 16 hex digits of HMAC-SHA256(token, "swarmbee mdns cluster v1"): tells a worker
 * whether a coordinator is of its cluster without revealing the token.
 */
export function clusterFingerprint(token: string): string {
  return createHmac('sha256', token).update('swarmbee mdns cluster v1').digest('hex').slice(0, 16);
}

/**
 * The multicast-dns socket inside a bonjour-service instance. It emits 'error' (EACCES,
 * EADDRINUSE) on an emitter bonjour-service keeps to itself and does not listen to;
 * unheard, that error would end the process, so both sides listen here.
 */
export function mdnsSocketOf(bonjour: object): EventEmitter | undefined {
  const server = (bonjour as { server?: { mdns?: unknown } }).server;
  return server?.mdns instanceof EventEmitter ? server.mdns : undefined;
}
