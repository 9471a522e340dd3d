/**
 * The transfer part of `npm run bench -- scale` (`--parts transfer`): shard transfer against
 * the link's own bandwidth, on loopback and through the link shaper at 100 Mbit/s, a 4 GiB
 * shard (`--shard-mib`) arriving whole over the shaped link, and a transfer cut at half way
 * that resumes (see transfer-part.ts).
 */

import { type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { runHeader, type SuiteContext } from '../suite.js';
import {
  DEFAULT_SHAPED_SHARD_MIB,
  measureShardTransfer,
  type TransferRow,
} from './transfer-part.js';

/** The target: a transfer runs at 80 % of its link or better. */
export const TRANSFER_LINK_SHARE_TARGET = 0.8;
/** A resume re-sends at most this share of the shard (from zero it would be at least half). */
export const RESUME_RESENT_SHARE_TARGET = 0.1;

const mbs = (bytesPerS: number) => (bytesPerS / 1e6).toFixed(1);
const mib = (bytes: number | undefined) =>
  bytes === undefined ? '–' : (bytes / 2 ** 20).toFixed(0);

export function transferTable(rows: readonly TransferRow[]) {
  return {
    title: 'Shard transfer: coordinator → worker process, against the same link measured raw',
    head: [
      'link',
      'transfer',
      'shard MiB',
      'link MB/s',
      'transfer MB/s',
      'transfer / link',
      'seconds',
      'sent again MiB',
      'arrived whole',
      'worker RSS MiB (joined → peak)',
    ],
    rows: rows.map((r) => [
      r.link,
      r.kind,
      mib(r.shardBytes),
      mbs(r.linkBytesPerS),
      mbs(r.transferBytesPerS),
      (r.transferBytesPerS / r.linkBytesPerS).toFixed(3),
      r.seconds.toFixed(1),
      mib(r.resentBytes),
      r.arrivedWhole ? 'yes' : 'NO',
      `${mib(r.workerRssBeforeBytes)} → ${mib(r.workerPeakRssBytes)}`,
    ]),
  };
}

/** The transfer part's result, for the scale suite to take in. */
export async function measureTransfer(context: SuiteContext): Promise<BenchResult> {
  const started = Date.now();
  const shapedShardMib = context.shardMib ?? (context.quick ? 256 : DEFAULT_SHAPED_SHARD_MIB);
  const rows = await measureShardTransfer({
    cliBin: context.cliBin,
    shapedShardMib,
    loopbackShardMib: context.quick ? 256 : 1024,
    resumeShardMib: context.quick ? 64 : 256,
    progress: context.progress,
  });
  const whole = rows.filter((r) => r.kind === 'whole');
  const resumed = rows.filter((r) => r.kind !== 'whole');
  return {
    suite: 'scale',
    title: 'Shard transfer',
    ...runHeader(context, started),
    options: { quick: context.quick, shapedShardMib },
    notes: [
      'The coordinator side (its WorkerRegistry and sendShard, 1 MiB chunks, each with the sha256 of its file through it: every byte hashed once on either side; the first send of a file hashes it as it is read) runs in the benchmark process; the worker is a `swarmbee worker` process writing to its disk cache.',
      'Transfer: time runs from the offer to `shard.stored`, so it includes the worker checking the whole shard (hashed as it is written) before it answers. Link bandwidth: raw bytes through the same loopback socket or the same shaping proxy, in the same run.',
      'Arrived whole: the shard was offered again and the worker, checking its cached copy, needed none of it.',
      'The resume row cuts the connection (coordinator side) once half the shard went out; the worker re-joins and is sent only what it had not verified. "Sent again" counts the bytes in flight at the cut.',
      'Worker RSS: VmRSS once registered and VmHWM (peak over its life) from /proc.',
    ],
    metrics: {},
    tables: [transferTable(rows)],
    checks: [
      ...whole.map((r) =>
        check(
          `${r.link}, ${mib(r.shardBytes)} MiB: transfer / link`,
          r.transferBytesPerS / r.linkBytesPerS,
          TRANSFER_LINK_SHARE_TARGET,
          'shard bytes / (offer → stored) ÷ raw bytes/s over the same socket',
        ),
      ),
      ...whole.map((r) =>
        check(
          `${r.link}, ${mib(r.shardBytes)} MiB: arrived whole`,
          r.arrivedWhole ? 1 : 0,
          1,
          'the cached shard re-verified on a second offer',
        ),
      ),
      ...resumed.map((r) =>
        check(
          `${r.link}, ${mib(r.shardBytes)} MiB cut at 50 %: share sent again`,
          r.resentBytes / r.shardBytes,
          RESUME_RESENT_SHARE_TARGET,
          'bytes sent more than once / shard bytes (from zero it would be >= 0.5)',
          '<=',
        ),
      ),
    ],
    charts: [
      {
        file: 'transfer.svg',
        title: 'Shard transfer against its link',
        svg: barChart({
          title: 'Shard transfer against its link (MB/s)',
          unit: 'MB/s',
          bars: rows.flatMap((r) => [
            { label: `${r.link} link`, value: r.linkBytesPerS / 1e6 },
            {
              label: `${r.link} ${r.kind === 'whole' ? 'whole' : 'resumed'}`,
              value: r.transferBytesPerS / 1e6,
            },
          ]),
        }),
      },
    ],
  };
}
