/**
 * Workers joining: a control connection registers under a name, which is also the id
 * the worker is told (so its log and the coordinator's name it the same way). A name
 * another worker holds is given up only when that worker no longer answers — a restarted
 * device whose old connection has not timed out yet — otherwise the newcomer is refused
 * with WORKER_NAME_TAKEN, which the worker reports and exits on.
 */
import { asSwarmBeeError, WorkerNameTakenError } from '@swarmbee/core';
import type { Channel, RegisterMessage } from '@swarmbee/protocol';
import { WorkerLink } from './worker-link.js';

export interface WorkerRegistryEvents {
  /** A worker registered (its link is open and in the registry). */
  joined: (link: WorkerLink, message: RegisterMessage) => void;
  /** A registered worker's control connection closed. */
  left: (link: WorkerLink) => void;
  log: (line: string) => void;
}

let nextProbe = 1;

/** A worker holding a wanted name answers within this (or the heartbeat timeout, if shorter), ms. */
export const NAME_PROBE_TIMEOUT_MS = 5000;

export class WorkerRegistry {
  readonly links = new Map<string, WorkerLink>();

  constructor(
    readonly events: WorkerRegistryEvents,
    /** How long a worker holding a wanted name has to answer before it counts as gone, ms. */
    readonly probeTimeoutMs: number = NAME_PROBE_TIMEOUT_MS,
  ) {}

  /** Connected workers that may serve (data owners do not), by name. */
  open(): WorkerLink[] {
    return [...this.links.values()]
      .filter((w) => w.open && !w.dataOwner)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Connected data owners (`--train-data`): they train federated rounds, not stages. */
  owners(): WorkerLink[] {
    return [...this.links.values()]
      .filter((w) => w.open && w.dataOwner)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Handles a new control connection: its first message must be `register`. */
  accept(channel: Channel<'control'>): void {
    channel.once('message', (message) => {
      if (message.type !== 'register') {
        channel.close(1008, 'register first');
        return;
      }
      this.#register(channel, message).catch((error: unknown) => {
        this.events.log(
          `registering ${message.name} failed: ${asSwarmBeeError(error).message}; closing it`,
        );
        if (channel.state === 'open') channel.close(1011, 'registration failed');
      });
    });
  }

  async #register(channel: Channel<'control'>, message: RegisterMessage): Promise<void> {
    const held = this.links.get(message.name);
    if (held?.open && (await this.#answers(held))) {
      const error = new WorkerNameTakenError(
        `a worker named ${message.name} is already connected (data ${held.dataUrl}) and answering; start this one with another --name`,
      );
      this.events.log(`refused a second worker named ${message.name} (data ${message.dataUrl})`);
      channel.send({ type: 'error', ...error.toWire() });
      channel.close(1008, 'worker name taken');
      return;
    }
    if (held?.open) {
      this.events.log(`worker ${held.name} stopped answering; its name goes to the new connection`);
      held.channel.terminate();
    }
    if (channel.state !== 'open') return;
    const link = new WorkerLink(message.name, message.device, message.dataUrl, channel);
    if (message.dataOwner) link.dataOwner = message.dataOwner;
    this.links.set(link.name, link);
    channel.on('close', () => {
      if (this.links.get(link.name) === link) this.links.delete(link.name);
      this.events.left(link);
    });
    channel.send({ type: 'registered', workerId: link.name });
    this.events.joined(link, message);
  }

  /** Whether a registered worker still answers a stats request in time. */
  async #answers(link: WorkerLink): Promise<boolean> {
    try {
      await link.channel.request(
        { type: 'stats.request', requestId: `name-probe-${nextProbe++}` },
        { timeoutMs: this.probeTimeoutMs },
      );
      return true;
    } catch {
      return false;
    }
  }
}
