/** `swarmbee profile`: measure a running cluster's devices and links, print and save them. */
import { writeFile } from 'node:fs/promises';
import type { ProfileEvent } from '@swarmbee/coordinator';
import { postEvents } from '@swarmbee/coordinator/client';
import type { ClusterProfile, DecodeTimingGrid } from '@swarmbee/core';
import type { Argv } from 'yargs';
import { progressBar } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';

export function profileCommand(yargs: Argv): Argv {
  return yargs.command(
    'profile',
    "Measure a running cluster: each device's forward times and every link's round trip and bandwidth",
    (y) =>
      y
        .option('url', {
          type: 'string',
          demandOption: true,
          describe: "The coordinator's API URL",
        })
        .option('out', {
          type: 'string',
          describe: 'Also write the profile as JSON here (input for swarmbee plan)',
        })
        .option('reprofile', {
          type: 'boolean',
          default: false,
          describe:
            'Measure again even where a worker has a cached profile for this model and runtime',
        })
        .option('api-key', { type: 'string', describe: "The API's bearer key, if it has one" }),
    async (args) => {
      const bar = progressBar();
      let profile: ClusterProfile | undefined;
      try {
        await postEvents(
          { url: args.url, apiKey: args.apiKey as string | undefined },
          '/swarmbee/profile',
          { reprofile: args.reprofile },
          (event) => {
            const e = event as ProfileEvent;
            if (e.type === 'progress') bar.report(e.progress);
            else profile = e.profile;
          },
        );
      } finally {
        bar.stop();
      }
      if (!profile) throw new Error('the coordinator ended the profile stream without a profile');
      process.stdout.write(formatProfile(profile));
      if (args.out) {
        await writeFile(args.out, `${JSON.stringify(profile, null, 2)}\n`);
        process.stdout.write(`profile written to ${args.out}\n`);
      }
    },
  );
}

/** Decode time of one micro-batch at the grid's smallest context, for batch size `batch`. */
function decodeMs(grid: DecodeTimingGrid, batch: number): string {
  const row = grid.batchSizes.indexOf(batch);
  const value = row < 0 ? undefined : grid.ms[row]?.[0];
  return value === undefined ? '-' : value.toFixed(2);
}

export function formatProfile(profile: ClusterProfile): string {
  const batches = profile.devices[0]?.timing.layers[0]?.decode.batchSizes ?? [1];
  const largest = batches.at(-1) ?? 1;
  const devices = profile.devices.map((d) => {
    const layer = d.timing.layers[0]!;
    return [
      d.name,
      formatBytes(d.memoryBytes),
      decodeMs(layer.decode, 1),
      decodeMs(layer.decode, largest),
      decodeMs(d.timing.embedding.decode, 1),
      decodeMs(d.timing.head.decode, 1),
      d.estimate ? 'estimate' : 'measured',
      d.runtime ? `node ${d.runtime.node}, onnxruntime ${d.runtime.onnxruntime}` : '-',
    ];
  });
  const links = profile.links.map((l) => [
    l.from,
    l.to,
    l.rttMs.toFixed(2),
    (l.bandwidthBytesPerS / 1e6).toFixed(1),
  ]);
  return [
    `Profile of ${profile.model.name} (${profile.model.nLayers} layers), ${profile.createdAt}`,
    renderTable(
      [
        'device',
        'memory',
        'layer ms (b=1)',
        `layer ms (b=${largest})`,
        'embedding ms',
        'head ms',
        'source',
        'runtime',
      ],
      devices,
    ),
    renderTable(['from', 'to', 'RTT ms', 'MB/s'], links),
    '',
  ].join('\n');
}
