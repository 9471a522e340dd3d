/**
 * Measures a data-plane link with probes: round-trip time from empty probes in
 * turn, bandwidth from a burst of full ones. The far end answers with
 * {@link answerProbe}.
 */
import { asSwarmBeeError, ChannelClosedError, TimeoutError } from '@swarmbee/core';
import type { Channel } from './channel.js';
import type { DataMessage, ProbeMessage } from './messages/index.js';

export interface LinkMeasurement {
  /** Median round-trip time of empty probes, ms. */
  rttMs: number;
  /** Payload bytes per second of a burst, round trip taken out. */
  bandwidthBytesPerS: number;
}

export interface ProbeOptions {
  /** Empty probes for the round-trip time. Default 10. */
  rttProbes?: number;
  /** Bytes per probe in the bandwidth burst. Default 256 KiB. */
  burstProbeBytes?: number;
  /** Total bytes of the burst. Default 2 MiB. */
  burstBytes?: number;
  /** Longest wait for any reply, ms. Default 10000. */
  timeoutMs?: number;
}

/** Replies to a probe on the channel it came in on. Returns true when the message was a probe. */
export function answerProbe(channel: Channel<'data'>, message: DataMessage): boolean {
  if (message.type !== 'probe') return false;
  if (message.reply)
    channel.send({
      type: 'probe.reply',
      probeId: message.probeId,
      bytes: message.payload.byteLength,
    });
  return true;
}

let nextProbe = 1;

export async function measureLink(
  channel: Channel<'data'>,
  options: ProbeOptions = {},
): Promise<LinkMeasurement> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  // Sends a probe and resolves on its reply: one promise, settled by the reply, a failed
  // send, the channel closing or the deadline, so nothing is left waiting unobserved.
  const roundTrip = (message: ProbeMessage, send: () => void | Promise<void>) =>
    new Promise<void>((resolve, reject) => {
      const release = () => {
        clearTimeout(timer);
        channel.off('message', onMessage);
        channel.off('close', onClose);
      };
      const fail = (error: unknown) => {
        release();
        reject(asSwarmBeeError(error));
      };
      const timer = setTimeout(
        () =>
          fail(new TimeoutError(`no probe reply from ${channel.peer.name} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onMessage = (reply: DataMessage) => {
        if (reply.type === 'probe.reply' && reply.probeId === message.probeId) {
          release();
          resolve();
        }
      };
      const onClose = () =>
        fail(new ChannelClosedError(`the channel to ${channel.peer.name} closed during a probe`));
      channel.on('message', onMessage);
      channel.on('close', onClose);
      Promise.resolve().then(send).catch(fail);
    });
  const probe = (payload: Uint8Array, reply: boolean): ProbeMessage => ({
    type: 'probe',
    probeId: `probe-${nextProbe++}`,
    payload,
    reply,
  });

  const rtts: number[] = [];
  for (let i = 0; i < (options.rttProbes ?? 10); i++) {
    const message = probe(new Uint8Array(0), true);
    const started = performance.now();
    await roundTrip(message, () => void channel.send(message));
    rtts.push(performance.now() - started);
  }
  rtts.sort((a, b) => a - b);
  const rttMs = rtts[Math.floor(rtts.length / 2)]!;

  const chunk = new Uint8Array(options.burstProbeBytes ?? 256 * 1024);
  const count = Math.max(1, Math.round((options.burstBytes ?? 2 * 1024 * 1024) / chunk.byteLength));
  const started = performance.now();
  for (let i = 0; i < count - 1; i++) await channel.write(probe(chunk, false));
  const last = probe(chunk, true);
  await roundTrip(last, () => channel.write(last));
  // The burst's last byte crossed once and its reply came back: one round trip is not bandwidth.
  const seconds = Math.max(1e-6, (performance.now() - started - rttMs) / 1000);
  return { rttMs, bandwidthBytesPerS: (count * chunk.byteLength) / seconds };
}
