/**
 * LAN discovery, the coordinator's side: announces the worker-facing port as the
 * DNS-SD service `_swarmbee._tcp` over multicast DNS (bonjour-service), so that
 * `swarmbee worker --discover` finds it without a URL. The TXT record carries
 * `v` (this scheme's version), `cluster` (a fingerprint of the token, so workers
 * skip coordinators of other clusters) and, when the coordinator has one, `url`
 * (its advertised URL; otherwise workers use the address the answer came from).
 *
 * mDNS stays on one link: it does not cross routers, Docker bridge networks or
 * Kubernetes pod networks, and some Wi-Fi access points drop multicast.
 */
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Bonjour, type Service } from 'bonjour-service';

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
 * whether a coordinator is of its cluster without revealing the token (the worker's
 * copy is in packages/worker/src/discovery.ts; a test checks they agree).
 */
export function clusterFingerprint(token: string): string {
  return createHmac('sha256', token).update('swarmbee mdns cluster v1').digest('hex').slice(0, 16);
}

export interface AnnounceOptions {
  /** The cluster token (only its fingerprint is announced). */
  token: string;
  /** The coordinator's worker-facing port. */
  port: number;
  /** The URL workers should use, when not the address the answer comes from. */
  url?: string;
  /** Instance name. Default: `SwarmBee coordinator on <host name>:<port>`. */
  name?: string;
  mdns?: MdnsOptions;
  /** mDNS failures (a name already taken, a socket error); the coordinator carries on. */
  onError?: (error: Error) => void;
}

export interface CoordinatorAnnouncement {
  readonly name: string;
  /** Says goodbye on the network and closes the mDNS socket. */
  stop(): Promise<void>;
}

export function announceCoordinator(options: AnnounceOptions): CoordinatorAnnouncement {
  const onError = (error: unknown): void =>
    options.onError?.(error instanceof Error ? error : new Error(String(error)));
  const bonjour = new Bonjour({ ...options.mdns }, onError);
  // multicast-dns emits 'error' (EACCES, EADDRINUSE) on an emitter bonjour-service
  // keeps to itself and does not listen to; unheard, it would end the process.
  const server = (bonjour as unknown as { server?: { mdns?: unknown } }).server;
  if (server?.mdns instanceof EventEmitter) server.mdns.on('error', onError);
  const name = options.name ?? `SwarmBee coordinator on ${hostname()}:${options.port}`;
  const service: Service = bonjour.publish({
    name,
    type: MDNS_SERVICE_TYPE,
    port: options.port,
    txt: {
      v: MDNS_TXT_VERSION,
      cluster: clusterFingerprint(options.token),
      ...(options.url === undefined ? {} : { url: options.url }),
    },
  });
  service.on('error', onError);
  let stopped: Promise<void> | undefined;
  return {
    name,
    stop: () => {
      stopped ??= new Promise<void>((resolve) => {
        service.stop?.(() => bonjour.destroy(() => resolve()));
      });
      return stopped;
    },
  };
}
