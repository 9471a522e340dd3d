/**
 * A control server without a coordinator: workers register through the coordinator's own
 * WorkerRegistry, and each one that registers is handed to whoever asks next. What the
 * transfer benchmark and tests move shards through; a coordinator has its own.
 */
import { listen } from '@swarmbee/protocol';
import type { WorkerLink } from './worker-link.js';
import { WorkerRegistry } from './worker-registry.js';

export interface TransferServer {
  url: string;
  port: number;
  /** The next worker that registers (or one that registered and was not taken yet). */
  nextLink(): Promise<WorkerLink>;
  close(): Promise<void>;
}

/** Listens on `host:port` (default 127.0.0.1:0) for workers that present `token`. */
export async function transferServer(options: {
  token: string;
  host?: string;
  port?: number;
}): Promise<TransferServer> {
  const joined: WorkerLink[] = [];
  const waiting: ((link: WorkerLink) => void)[] = [];
  const registry = new WorkerRegistry({
    joined: (link) => {
      const waiter = waiting.shift();
      if (waiter) waiter(link);
      else joined.push(link);
    },
    left: () => {},
    log: () => {},
  });
  const server = await listen(
    { host: options.host ?? '127.0.0.1', port: options.port ?? 0, token: options.token },
    (channel) => {
      if (channel.plane === 'control') registry.accept(channel);
    },
  );
  return {
    url: server.url,
    port: server.port,
    nextLink: () => {
      const link = joined.shift();
      return link ? Promise.resolve(link) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => server.close(),
  };
}
