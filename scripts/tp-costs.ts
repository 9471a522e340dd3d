/**
 * What a tensor-parallel token costs in process: one greedy stream decoded by the whole model
 * as one engine (one session run per token), as a group of one member (the same work cut into
 * segment runs: two per layer, plus embedding and head), and as TP2 and TP4 groups, each
 * member on its own stage thread with one onnxruntime thread. Rounds alternate the layouts;
 * prints per layout the median ms/token, session runs per token, and at the leader its ms
 * awaiting sums per all-reduce call (the copy, the wait for the slowest member, the add).
 * "overhead per segment run" = (group of one − one engine) / (runs per token − 1).
 *
 *     node --conditions=swarmbee:source --import tsx scripts/tp-costs.ts \
 *       [stories110m|tiny] [--tokens 32] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import {
  type MemberTiming,
  type StageEngine,
  TensorGroupStage,
  ThreadedStage,
} from '@swarmbee/engine';
import {
  buildGroupShards,
  buildShard,
  cachedSynthModel,
  DEFAULT_SYNTH_SEED,
  requireLlamaDir,
  type SynthPresetName,
} from '@swarmbee/model';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { tokens: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' } },
});
const preset = (positionals[0] ?? 'stories110m') as SynthPresetName;
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const dir = requireLlamaDir(await cachedSynthModel(preset, DEFAULT_SYNTH_SEED), 'tp-costs');
const { config } = dir.manifest;
const range = { start: 0, end: config.nLayers };
const stage = { intraOpThreads: 1 };

interface Layout {
  name: string;
  open: () => Promise<StageEngine>;
  /** All-reduce calls per token: two per layer, the embedding's, and the logits' when split. */
  calls: number;
}
const groupCalls = 2 * config.nLayers + 1;
const layouts: Layout[] = [
  { name: 'one engine', calls: 0, open: () => ThreadedStage.create(buildShard(dir, range), stage) },
  ...[1, 2, 4]
    .filter((k) => k <= config.nKvHeads)
    .flatMap((k) =>
      (k === 1 ? (['blocking'] as const) : (['blocking', 'async'] as const)).map((wait) => ({
        name: k === 1 ? 'group of one' : `TP${k}, ${wait} wait`,
        calls: groupCalls,
        open: async () =>
          TensorGroupStage.create(await buildGroupShards(dir, range, Array(k).fill(1)), {
            stage,
            wait,
          }),
      })),
    ),
  ...[2, 4]
    .filter((k) => k <= config.nKvHeads)
    .map((k) => ({
      name: `TP${k}, head split by vocabulary`,
      calls: groupCalls + 1,
      open: async () =>
        TensorGroupStage.create(
          await buildGroupShards(dir, range, Array(k).fill(1), { splitVocab: true }),
          { stage },
        ),
    })),
];

interface Run {
  msPerToken: number;
  runsPerToken: number;
  allReduceMsPerToken: number;
}

/** BOS, then `tokens` greedy steps one at a time; the first (the prefill) is not counted. */
async function decode(engine: StageEngine, seqId: string): Promise<Run> {
  let token = 1n;
  let runs = 0;
  let allReduceMs = 0;
  let start = 0;
  for (let pos = 0; pos <= tokens; pos++) {
    if (pos === 1) start = performance.now();
    const out = await engine.forward({
      rows: [{ seqId, start: pos, count: 1, sampling: { temperature: 0, topK: 0, topP: 1 } }],
      tokens: BigInt64Array.of(token),
    });
    if (out.kind !== 'tokens') throw new Error('the stage holds the LM head');
    token = BigInt(out.tokens[0]!);
    const timing = out.timing as Partial<MemberTiming>;
    if (pos > 0) {
      runs += timing.segmentRuns ?? 1;
      allReduceMs += timing.allReduceMs ?? 0;
    }
  }
  await engine.release([seqId]);
  return {
    msPerToken: (performance.now() - start) / tokens,
    runsPerToken: runs / tokens,
    allReduceMsPerToken: allReduceMs / tokens,
  };
}

const engines = [];
for (const layout of layouts) engines.push(await layout.open());
const runs: Run[][] = layouts.map(() => []);
try {
  for (let round = 0; round <= rounds; round++)
    for (const [i, engine] of engines.entries()) {
      const run = await decode(engine, `r${round}`);
      if (round > 0) runs[i]!.push(run); // round 0 warms up
    }
} finally {
  await Promise.allSettled(engines.map((e) => e.close()));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => x.toFixed(3);
const one = median(runs[0]!.map((r) => r.msPerToken));
console.log(
  `${preset}: ${config.nLayers} layers, dim ${config.dim}, ${config.nKvHeads} KV heads; ${tokens} tokens x ${rounds} rounds, 1 onnxruntime thread per member`,
);
console.log(
  '| layout | ms/token | × one engine | session runs/token | all-reduce calls/token | leader ms per all-reduce call |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [i, layout] of layouts.entries()) {
  const r = runs[i]!;
  const msPerToken = median(r.map((x) => x.msPerToken));
  const runsPerToken = r[0]!.runsPerToken;
  const { calls } = layout;
  const perCall = calls === 0 ? '-' : ms(median(r.map((x) => x.allReduceMsPerToken)) / calls);
  console.log(
    `| ${layout.name} | ${ms(msPerToken)} | ${(msPerToken / one).toFixed(2)} | ${runsPerToken} | ${calls} | ${perCall} |`,
  );
}
const groupOfOne = median(runs[1]!.map((x) => x.msPerToken));
console.log(
  `overhead per segment run: ${ms((groupOfOne - one) / (runs[1]![0]!.runsPerToken - 1))} ms ((group of one − one engine) / (runs − 1))`,
);
