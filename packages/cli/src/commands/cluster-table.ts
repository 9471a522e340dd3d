/** The deployed plan as a table: what runs where, and what moving it cost. */
import type { DeployedStage } from '@swarmbee/coordinator';
import { formatBytes, renderTable } from '../ui/table.js';

export function deploymentTable(stages: readonly DeployedStage[]): string {
  return renderTable(
    ['stage', 'worker', 'layers', 'shard', 'transferred', 'load ms'],
    stages.map((s) => [
      s.stage,
      // A tensor-parallel stage: its members by rank, the leader first.
      s.members ? s.members.join(' + ') : s.worker,
      `[${s.layerStart}, ${s.layerEnd})`,
      s.shardId.slice(0, 12),
      s.transferredBytes === 0 ? 'cached' : formatBytes(s.transferredBytes),
      s.loadMs.toFixed(0),
    ]),
  );
}
