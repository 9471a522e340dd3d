/**
 * LAN discovery, the worker's side: finds a coordinator of this worker's cluster
 * announced as `_swarmbee._tcp` over multicast DNS (`swarmbee coordinator --mdns`;
 * see packages/coordinator/src/discovery.ts), so `swarmbee worker --discover` needs
 * no URL. Coordinators whose TXT `cluster` fingerprint differs from this token's
 * are skipped: they belong to another cluster.
 *
 * mDNS is unauthenticated: anyone on the link can announce. The fingerprint only
 * picks the cluster; the token's challenge and response on connecting is what
 * proves a coordinator genuine (a fake one fails it, and the worker stops).
 */
import { AbortedError, ConnectFailedError } from '@swarmbee/core';
import {
  clusterFingerprint,
  MDNS_SERVICE_TYPE,
  MDNS_TXT_VERSION,
  type MdnsOptions,
  mdnsSocketOf,
} from '@swarmbee/protocol';
import { Bonjour, type Service } from 'bonjour-service';

export interface DiscoverOptions {
  /** The cluster token: only coordinators with its fingerprint are taken. */
  token: string;
  /** Give up after this long, ms. Default: wait until `signal` aborts. */
  timeoutMs?: number;
  signal?: AbortSignal;
  mdns?: MdnsOptions;
  /** Progress: coordinators skipped, and a line every `waitingLogMs` while none is found. */
  log?: (line: string) => void;
  /** Interval of the "still looking" line, ms. Default 10 000. */
  waitingLogMs?: number;
}

export interface DiscoveredCoordinator {
  /** The coordinator's worker URL, e.g. ws://192.168.1.10:7070. */
  url: string;
  /** Its mDNS instance name. */
  name: string;
}

/** The URL a worker joins: the announced one, else the answer's source address. */
function urlOf(service: Service): string | undefined {
  const announced = service.txt?.url;
  if (typeof announced === 'string' && /^wss?:\/\//.test(announced)) return announced;
  const address = service.referer?.address ?? service.addresses?.[0];
  if (!address) return undefined;
  return `ws://${address.includes(':') ? `[${address}]` : address}:${service.port}`;
}

/**
 * Resolves with the first coordinator of this cluster that answers. Rejects with
 * SWARMBEE_ERR_CONNECT_FAILED after `timeoutMs`, or SWARMBEE_ERR_ABORTED when
 * `signal` aborts. The mDNS socket is closed either way.
 */
export function discoverCoordinator(options: DiscoverOptions): Promise<DiscoveredCoordinator> {
  const fingerprint = clusterFingerprint(options.token);
  const log = options.log ?? (() => {});
  return new Promise<DiscoveredCoordinator>((resolve, reject) => {
    let bonjour: Bonjour | undefined;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const closing = bonjour;
      bonjour = undefined;
      if (closing) closing.destroy(settle);
      else settle();
    };
    const onAbort = (): void =>
      finish(() => reject(new AbortedError('stopped while looking for the coordinator')));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (error: Error): void =>
      finish(() =>
        reject(new ConnectFailedError(`mDNS failed: ${error.message}`, { cause: error })),
      );
    bonjour = new Bonjour({ ...options.mdns }, onError);
    mdnsSocketOf(bonjour)?.on('error', onError);
    const skipped = new Set<string>();
    bonjour.find({ type: MDNS_SERVICE_TYPE }, (service) => {
      const txt = (service.txt ?? {}) as Record<string, unknown>;
      const url = urlOf(service);
      if (txt.v !== MDNS_TXT_VERSION || txt.cluster !== fingerprint || !url) {
        if (!skipped.has(service.name))
          log(`skipping "${service.name}": another cluster (or version)`);
        skipped.add(service.name);
        return;
      }
      finish(() => resolve({ url, name: service.name }));
    });
    if (options.timeoutMs !== undefined)
      timers.push(
        setTimeout(
          () =>
            finish(() =>
              reject(
                new ConnectFailedError(
                  `no coordinator of this cluster answered on the LAN (mDNS _swarmbee._tcp) within ${options.timeoutMs} ms: start it with --mdns, check that multicast reaches this network, or pass --join ws://HOST:7070`,
                ),
              ),
            ),
          options.timeoutMs,
        ),
      );
    const waiting = (): void => {
      log(
        'looking for the coordinator on the LAN (mDNS _swarmbee._tcp); is it running with --mdns?',
      );
      timers.push(setTimeout(waiting, options.waitingLogMs ?? 10_000).unref());
    };
    timers.push(setTimeout(waiting, options.waitingLogMs ?? 10_000).unref());
  });
}
