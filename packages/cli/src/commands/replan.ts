/** `swarmbee replan`: ask a running coordinator to choose a plan again and move onto it. */

import { postJson } from '@swarmbee/coordinator/client';
import type { Argv } from 'yargs';
import { renderTable } from '../ui/table.js';

interface ReplanReply {
  plan: {
    stages: { index: number; device: string; layerStart: number; layerEnd: number }[];
    planner?: string;
    tokensPerS?: number;
    tpotMs?: number;
  };
}

export function replanCommand(yargs: Argv): Argv {
  return yargs.command(
    'replan',
    'Re-plan a running cluster (new workers are used from here); running requests carry on',
    (y) =>
      y
        .option('url', {
          type: 'string',
          demandOption: true,
          describe: "The coordinator's API URL",
        })
        .option('planner', {
          choices: ['dp', 'ga', 'pso', 'auto', 'solo', 'even', 'memory'] as const,
          describe: 'Planner to use from now on (default: unchanged)',
        })
        .option('objective', {
          choices: ['latency', 'throughput'] as const,
          describe: 'Objective from now on (default: unchanged)',
        })
        .option('pin-first', { type: 'string', describe: 'Worker that must run stage 0' })
        .option('pin-last', { type: 'string', describe: 'Worker that must run the last stage' })
        .option('api-key', { type: 'string', describe: "The API's bearer key, if it has one" }),
    async (args) => {
      const body: Record<string, string> = {};
      if (args.planner) body.planner = args.planner;
      if (args.objective) body.objective = args.objective;
      if (args.pinFirst) body.pin_first = args.pinFirst;
      if (args.pinLast) body.pin_last = args.pinLast;
      const { plan } = await postJson<ReplanReply>(
        { url: args.url, apiKey: args.apiKey as string | undefined },
        '/swarmbee/replan',
        body,
      );
      const rows = plan.stages.map((s) => [s.index, s.device, `[${s.layerStart}, ${s.layerEnd})`]);
      process.stdout.write(`${renderTable(['stage', 'worker', 'layers'], rows)}\n`);
      if (plan.planner)
        process.stdout.write(
          `planner ${plan.planner}: predicted ${plan.tpotMs?.toFixed(2)} ms/token, ${plan.tokensPerS?.toFixed(1)} tokens/s\n`,
        );
    },
  );
}
