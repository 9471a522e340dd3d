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
import { hostname } from 'node:os';
import {
  clusterFingerprint,
  MDNS_SERVICE_TYPE,
  MDNS_TXT_VERSION,
  type MdnsOptions,
  mdnsSocketOf,
} from '@swarmbee/protocol';
import { Bonjour, type Service } from 'bonjour-service';

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
  mdnsSocketOf(bonjour)?.on('error', onError);
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
